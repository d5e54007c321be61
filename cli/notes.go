package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/latch-dev/latch/client"
	"github.com/latch-dev/latch/flows"
)

func newNotesCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "notes",
		Short: "Read and write latch serve's demo notes (a protected resource)",
		Long: `latch serve protects a tiny demo resource, notes, with roles: every account
reads every note, the owner of a note may always edit or delete it, and an
editor may edit or delete anyone's. A refusal names the permission that was
missing. The notes are not secret; their text is a plain argument.`,
		Example: `  latch notes add "buy milk"
  latch notes list
  latch notes edit 7 "buy oat milk"
  latch notes rm 7`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newNotesListCmd(g), newNotesAddCmd(g), newNotesShowCmd(g), newNotesEditCmd(g), newNotesRmCmd(g))
	return cmd
}

func newNotesListCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:     "list",
		Short:   "List every note, newest first",
		Example: "  latch notes list\n  latch notes list --json | jq -r '.notes[].note'",
		Args:    cobra.NoArgs,
		RunE: g.withEnv(func(ctx context.Context, e *flows.Env, _ []string) error {
			notes, err := e.Notes(ctx, g.profile)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(g.out, struct {
					Notes []client.Note `json:"notes"`
				}{notes})
			}
			if len(notes) == 0 {
				fmt.Fprintln(g.out, `No notes yet: latch notes add "TEXT" writes one.`)
				return nil
			}
			tw := tabwriter.NewWriter(g.out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tOWNER\tUPDATED\tNOTE")
			for _, n := range notes {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", n.ID, n.OwnerName, n.UpdatedAt.Local().Format(time.DateTime), firstLine(n.Note, 50))
			}
			return tw.Flush()
		}),
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newNotesAddCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "add TEXT",
		Short:   "Write a new note, owned by you",
		Example: `  latch notes add "buy milk"`,
		Args:    cobra.ExactArgs(1),
		RunE: g.withEnv(func(ctx context.Context, e *flows.Env, args []string) error {
			n, err := e.AddNote(ctx, g.profile, args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(g.out, "Added note %s.\n", n.ID)
			return nil
		}),
	}
}

func newNotesShowCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:     "show ID",
		Short:   "Show one note",
		Example: "  latch notes show 7\n  latch notes show 7 --json",
		Args:    cobra.ExactArgs(1),
		RunE: g.withEnv(func(ctx context.Context, e *flows.Env, args []string) error {
			n, err := e.Note(ctx, g.profile, args[0])
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(g.out, n)
			}
			printNote(g.out, n)
			return nil
		}),
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newNotesEditCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "edit ID TEXT",
		Short:   "Replace a note's text (yours, or anyone's as an editor)",
		Example: `  latch notes edit 7 "buy oat milk"`,
		Args:    cobra.ExactArgs(2),
		RunE: g.withEnv(func(ctx context.Context, e *flows.Env, args []string) error {
			n, err := e.EditNote(ctx, g.profile, args[0], args[1])
			if err != nil {
				return err
			}
			fmt.Fprintf(g.out, "Note %s updated.\n", n.ID)
			return nil
		}),
	}
}

func newNotesRmCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "rm ID",
		Short:   "Delete a note (yours, or anyone's as an editor)",
		Example: "  latch notes rm 7",
		Args:    cobra.ExactArgs(1),
		RunE: g.withEnv(func(ctx context.Context, e *flows.Env, args []string) error {
			if err := e.DeleteNote(ctx, g.profile, args[0]); err != nil {
				return err
			}
			fmt.Fprintf(g.out, "Note %s deleted.\n", args[0])
			return nil
		}),
	}
}

func printNote(w io.Writer, n *client.Note) {
	fmt.Fprintf(w, "note %s by %s\n", n.ID, n.OwnerName)
	fmt.Fprintf(w, "created: %s\nupdated: %s\n\n%s\n", n.CreatedAt.Local().Format(time.DateTime),
		n.UpdatedAt.Local().Format(time.DateTime), n.Note)
}

// firstLine is s's first line, cut to max runes with an ellipsis.
func firstLine(s string, max int) string {
	s, _, cut := strings.Cut(s, "\n")
	if r := []rune(s); len(r) > max {
		return string(r[:max-1]) + "…"
	}
	if cut {
		return s + " …"
	}
	return s
}
