// Package flows holds latch's use cases — logging in, keeping tokens fresh and
// the like — as UI-agnostic, step-wise types that the TUI and the CLI drive.
//
// It owns the rules of each flow, not their presentation: it never imports
// tui/ or cli/, never prints, and never puts a secret into an error message.
package flows
