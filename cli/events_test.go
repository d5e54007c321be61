package cli

import (
	"strings"
	"testing"
	"time"
)

func TestParseSince(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in      string
		want    time.Time
		wantErr bool
	}{
		{"7d", now.AddDate(0, 0, -7), false},
		{"0d", now, false},
		{"90m", now.Add(-90 * time.Minute), false},
		{"24h", now.Add(-24 * time.Hour), false},
		{"2026-11-01T08:00:00Z", time.Date(2026, 11, 1, 8, 0, 0, 0, time.UTC), false},
		{"2026-11-01", time.Date(2026, 11, 1, 0, 0, 0, 0, time.Local), false},
		{"-5h", time.Time{}, true},
		{"yesterday", time.Time{}, true},
		{"7x", time.Time{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseSince(tt.in, now)
			if tt.wantErr {
				if err == nil || !strings.Contains(err.Error(), "--since") {
					t.Fatalf("err = %v, want one naming --since", err)
				}
				return
			}
			if err != nil || !got.Equal(tt.want) {
				t.Fatalf("parseSince(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestDetailText(t *testing.T) {
	tests := []struct{ in, want string }{
		{``, "-"},
		{`null`, "-"},
		{`{}`, "-"},
		{`{"reason":"bad_credentials"}`, "reason=bad_credentials"},
		{`{"change":"granted","role":"editor"}`, "change=granted role=editor"},
	}
	for _, tt := range tests {
		if got := detailText([]byte(tt.in)); got != tt.want {
			t.Errorf("detailText(%s) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
