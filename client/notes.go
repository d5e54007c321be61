package client

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"time"
)

// Note is one note of latch serve's demo resource (/api/notes): anyone
// with notes:read reads every note; its owner, or an editor, changes it.
type Note struct {
	ID        string    `json:"id"`
	Owner     string    `json:"owner"`
	OwnerName string    `json:"owner_name"`
	Note      string    `json:"note"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// noteWire accepts ids sent as JSON strings or numbers.
type noteWire struct {
	ID        flexID    `json:"id"`
	Owner     flexID    `json:"owner"`
	OwnerName string    `json:"owner_name"`
	Note      *string   `json:"note"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

func (w noteWire) note(r *reply) (*Note, error) {
	if w.ID == "" || w.Note == nil {
		return nil, shapeError(r, "has no note id or text")
	}
	return &Note{ID: string(w.ID), Owner: string(w.Owner), OwnerName: w.OwnerName, Note: *w.Note,
		CreatedAt: w.CreatedAt, UpdatedAt: w.UpdatedAt}, nil
}

// Notes lists every note the token may read, newest first.
func (c *Client) Notes(ctx context.Context, accessToken string) ([]Note, error) {
	var w struct {
		Notes *[]noteWire `json:"notes"`
	}
	r, err := c.bearerCall(ctx, http.MethodGet, "/api/notes", nil, accessToken, http.StatusOK, &w)
	if err != nil {
		return nil, err
	}
	if w.Notes == nil {
		return nil, shapeError(r, "has no notes list")
	}
	out := make([]Note, 0, len(*w.Notes))
	for _, nw := range *w.Notes {
		n, err := nw.note(r)
		if err != nil {
			return nil, err
		}
		out = append(out, *n)
	}
	return out, nil
}

// Note reads one note. A missing note matches ErrNotFound.
func (c *Client) Note(ctx context.Context, accessToken, id string) (*Note, error) {
	return c.noteCall(ctx, http.MethodGet, id, nil, accessToken, http.StatusOK)
}

// AddNote creates a note owned by the token's account.
func (c *Client) AddNote(ctx context.Context, accessToken, text string) (*Note, error) {
	var w noteWire
	r, err := c.bearerCall(ctx, http.MethodPost, "/api/notes", map[string]string{"note": text}, accessToken,
		http.StatusCreated, &w)
	if err != nil {
		return nil, err
	}
	return w.note(r)
}

// EditNote replaces a note's text. Someone who neither owns the note nor
// has notes:write gets an *APIError matching ErrForbidden.
func (c *Client) EditNote(ctx context.Context, accessToken, id, text string) (*Note, error) {
	return c.noteCall(ctx, http.MethodPatch, id, map[string]string{"note": text}, accessToken, http.StatusOK)
}

// DeleteNote deletes a note (its owner, or notes:delete).
func (c *Client) DeleteNote(ctx context.Context, accessToken, id string) error {
	if id == "" {
		return errors.New("delete note: no note id given")
	}
	_, err := c.bearerCall(ctx, http.MethodDelete, "/api/notes/"+url.PathEscape(id), nil, accessToken,
		http.StatusNoContent, nil)
	return err
}

func (c *Client) noteCall(ctx context.Context, method, id string, body any, accessToken string, want int) (*Note, error) {
	if id == "" {
		return nil, errors.New("note: no note id given")
	}
	var w noteWire
	r, err := c.bearerCall(ctx, method, "/api/notes/"+url.PathEscape(id), body, accessToken, want, &w)
	if err != nil {
		return nil, err
	}
	return w.note(r)
}
