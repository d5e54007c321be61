package server

import (
	"context"
	"database/sql"
	"errors"
	"net/http"
	"time"
	"unicode/utf8"
)

// maxNote is the longest note, in characters.
const maxNote = 10000

// note is the demo resource: every account with notes:read reads every
// note; its owner may always edit or delete it, editors any note.
type note struct {
	ID        int64     `json:"id"`
	Owner     int64     `json:"owner"`
	OwnerName string    `json:"owner_name"`
	Note      string    `json:"note"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

const noteColumns = "n.id, n.owner, u.username, n.note, n.created_at, n.updated_at FROM notes n JOIN users u ON u.id = n.owner"

func scanNote(row rowScanner) (*note, error) {
	var n note
	var created, updated int64
	if err := row.Scan(&n.ID, &n.Owner, &n.OwnerName, &n.Note, &created, &updated); err != nil {
		return nil, err
	}
	n.CreatedAt, n.UpdatedAt = time.Unix(created, 0).UTC(), time.Unix(updated, 0).UTC()
	return &n, nil
}

func (s *Server) loadNote(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, id int64) (*note, error) {
	n, err := scanNote(q.QueryRowContext(ctx, "SELECT "+noteColumns+" WHERE n.id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("note")
	}
	return n, err
}

// noteBody reads {"note"} and checks its length.
func noteBody(w http.ResponseWriter, r *http.Request) (string, error) {
	var req struct {
		Note string `json:"note"`
	}
	if err := decode(w, r, &req); err != nil {
		return "", err
	}
	if n := utf8.RuneCountInString(req.Note); n < 1 || n > maxNote {
		return "", validationProblem(fieldErrors{"note": "must be 1 to 10000 characters"})
	}
	return req.Note, nil
}

func (s *Server) handleNotesList(w http.ResponseWriter, r *http.Request, a *auth) {
	rows, err := s.st.db.QueryContext(r.Context(), "SELECT "+noteColumns+" ORDER BY n.created_at DESC, n.id DESC")
	list, err := scanRows(rows, err, scanNote)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"notes": list})
}

func (s *Server) handleNotesCreate(w http.ResponseWriter, r *http.Request, a *auth) {
	text, err := noteBody(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	ctx := r.Context()
	var n *note
	err = s.st.tx(ctx, func(tx *sql.Tx) error {
		now := s.now().Unix()
		var id int64
		err := tx.QueryRowContext(ctx, "INSERT INTO notes (owner, note, created_at, updated_at) VALUES (?, ?, ?, ?) RETURNING id",
			a.UserID, text, now, now).Scan(&id)
		if err != nil {
			return err
		}
		n, err = s.loadNote(ctx, tx, id)
		return err
	})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, n)
}

func (s *Server) handleNoteGet(w http.ResponseWriter, r *http.Request, a *auth) {
	id, err := pathID(r, "id", "note")
	if err == nil {
		var n *note
		if n, err = s.loadNote(r.Context(), s.st.db, id); err == nil {
			writeJSON(w, http.StatusOK, n)
			return
		}
	}
	s.writeError(w, r, err)
}

// mayChange is the object-level check: the owner may always change a
// note, others need perm.
func mayChange(a *auth, n *note, perm string) error {
	if n.Owner == a.UserID || hasPerm(a.Roles, perm) {
		return nil
	}
	return forbidden("needs " + perm + " (or owning the note)" + grantHint(perm))
}

func (s *Server) handleNoteUpdate(w http.ResponseWriter, r *http.Request, a *auth) {
	id, err := pathID(r, "id", "note")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	text, err := noteBody(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	ctx := r.Context()
	var n *note
	err = s.st.tx(ctx, func(tx *sql.Tx) error {
		var err error
		if n, err = s.loadNote(ctx, tx, id); err != nil {
			return err
		}
		if err := mayChange(a, n, permNotesWrite); err != nil {
			return err
		}
		now := s.now()
		if _, err := tx.ExecContext(ctx, "UPDATE notes SET note = ?, updated_at = ? WHERE id = ?", text, now.Unix(), id); err != nil {
			return err
		}
		n.Note, n.UpdatedAt = text, time.Unix(now.Unix(), 0).UTC()
		return nil
	})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, n)
}

func (s *Server) handleNoteDelete(w http.ResponseWriter, r *http.Request, a *auth) {
	id, err := pathID(r, "id", "note")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	ctx := r.Context()
	err = s.st.tx(ctx, func(tx *sql.Tx) error {
		n, err := s.loadNote(ctx, tx, id)
		if err != nil {
			return err
		}
		if err := mayChange(a, n, permNotesDelete); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, "DELETE FROM notes WHERE id = ?", id)
		return err
	})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
