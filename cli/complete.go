package cli

import (
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/latch-dev/latch/vault"
)

// fileFlags are the flags whose values are paths: the shell completes file
// names there and nowhere else.
var fileFlags = map[string]bool{
	"db": true, "clients": true, "secret-key-file": true, "tls-cert": true, "tls-key": true, "socket": true, "data": true,
}

// addCompletions gives the shell's completion (latch completion bash|zsh|
// fish|powershell) what latch knows: profile names, code labels, the
// servers, issuers and users of the profiles, and the fixed choices of
// enumerated flags. Arguments and flags with nothing to offer complete to
// nothing rather than to file names.
func addCompletions(root *cobra.Command) {
	must := func(err error) {
		if err != nil {
			panic(err) // a flag renamed without its completion: caught by the tests
		}
	}
	fixed := func(cmd *cobra.Command, flag string, choices ...string) {
		must(cmd.RegisterFlagCompletionFunc(flag, cobra.FixedCompletions(choices, cobra.ShellCompDirectiveNoFileComp)))
	}
	fromProfiles := func(cmd *cobra.Command, flag string, field func(vault.Profile) string) {
		must(cmd.RegisterFlagCompletionFunc(flag, func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
			return profileValues(field), cobra.ShellCompDirectiveNoFileComp
		}))
	}
	fixed(root, "vault", "auto\tthe keyring if it works here, else the file vault",
		"keyring\tthe system keyring", "file\tthe encrypted file vault", "memory\tnothing kept after this latch exits")
	fromProfiles(root, "profile", func(p vault.Profile) string { return p.Name + "\t" + where(p) })

	for _, cmd := range allCommands(root) {
		switch cmd.CommandPath() {
		case "latch profile use", "latch profile rm":
			cmd.ValidArgsFunction = func(_ *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
				if len(args) > 0 {
					return nil, cobra.ShellCompDirectiveNoFileComp
				}
				return profileValues(func(p vault.Profile) string { return p.Name + "\t" + where(p) }), cobra.ShellCompDirectiveNoFileComp
			}
		case "latch login":
			fromProfiles(cmd, "server", func(p vault.Profile) string { return p.Server })
			fromProfiles(cmd, "issuer", func(p vault.Profile) string {
				if p.Server != "" {
					return ""
				}
				return p.Issuer
			})
			fromProfiles(cmd, "client-id", func(p vault.Profile) string { return p.ClientID })
			fromProfiles(cmd, "username", func(p vault.Profile) string { return p.Username })
			must(cmd.RegisterFlagCompletionFunc("scopes", func(_ *cobra.Command, _ []string, typed string) ([]string, cobra.ShellCompDirective) {
				// Scopes are one space-separated value: offer the next one.
				done := strings.Fields(typed)
				if !strings.HasSuffix(typed, " ") && len(done) > 0 {
					done = done[:len(done)-1]
				}
				var out []string
				for _, s := range []string{"openid", "offline_access", "profile", "email"} {
					if !slices.Contains(done, s) {
						out = append(out, strings.Join(append(slices.Clone(done), s), " "))
					}
				}
				return out, cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveNoSpace
			}))
		case "latch signup":
			fromProfiles(cmd, "server", func(p vault.Profile) string { return p.Server })
		case "latch codes use":
			must(cmd.RegisterFlagCompletionFunc("label", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
				cfg, err := loadConfigForCompletion()
				if err != nil {
					return nil, cobra.ShellCompDirectiveNoFileComp
				}
				return cfg.CodeLabels, cobra.ShellCompDirectiveNoFileComp
			}))
		case "latch api":
			fixed(cmd, "method", "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD")
		case "latch serve":
			fixed(cmd, "log-level", "debug", "info", "warn", "error")
			fixed(cmd, "log-format", "text", "json")
		}
		if cmd.ValidArgsFunction == nil && len(cmd.ValidArgs) == 0 {
			cmd.ValidArgsFunction = cobra.NoFileCompletions
		}
		var flags []*pflag.Flag
		cmd.LocalFlags().VisitAll(func(f *pflag.Flag) { flags = append(flags, f) })
		for _, f := range flags {
			if _, ok := cmd.GetFlagCompletionFunc(f.Name); ok || fileFlags[f.Name] || f.Value.Type() == "bool" {
				continue
			}
			must(cmd.RegisterFlagCompletionFunc(f.Name, cobra.NoFileCompletions))
		}
	}
}

func allCommands(c *cobra.Command) []*cobra.Command {
	out := []*cobra.Command{c}
	for _, sub := range c.Commands() {
		out = append(out, allCommands(sub)...)
	}
	return out
}

// loadConfigForCompletion reads the profiles file of latch's home.
func loadConfigForCompletion() (*vault.Config, error) {
	home, err := vault.Home()
	if err != nil {
		return nil, err
	}
	return vault.LoadConfig(home)
}

// profileValues is field of every profile, without blanks or repeats.
func profileValues(field func(vault.Profile) string) []string {
	cfg, err := loadConfigForCompletion()
	if err != nil {
		return nil
	}
	var out []string
	for _, p := range cfg.Profiles {
		if v := field(p); v != "" && v != "\t" && !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

// where is a profile's server, else its issuer.
func where(p vault.Profile) string {
	if p.Server != "" {
		return p.Server
	}
	return p.Issuer
}
