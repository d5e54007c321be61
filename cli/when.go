package cli

import (
	"fmt"
	"time"
)

// when says how far t is from now and when that is on the wall clock, the
// way a person reads it: "in 4m10s (today 15:04:05)", "in 7 days (Mon 7 Dec
// 08:04)", "3h ago (yesterday 21:10)". The wall clock is in now's location.
// It is the one place latch's text output turns a time into words.
func when(now, t time.Time) string {
	d := t.Sub(now).Round(time.Second)
	if d == 0 {
		return fmt.Sprintf("just now (%s)", wallClock(now, t))
	}
	if d > 0 {
		return fmt.Sprintf("in %s (%s)", span(d), wallClock(now, t))
	}
	return fmt.Sprintf("%s ago (%s)", span(-d), wallClock(now, t))
}

// span is a duration rounded to what matters at its size: seconds under a
// minute, minutes and seconds under an hour, hours and minutes under two
// days, then days.
func span(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		d = d.Round(time.Second)
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 48*time.Hour:
		d = d.Round(time.Minute)
		if d < 24*time.Hour {
			return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
		}
		return fmt.Sprintf("1 day %dh", int(d.Hours())-24)
	}
	return fmt.Sprintf("%d days", int((d+12*time.Hour).Hours()/24))
}

// wallClock names t's day relative to now's (today, yesterday, tomorrow,
// else the date) and its time: seconds only today, where they matter.
func wallClock(now, t time.Time) string {
	t = t.In(now.Location())
	y1, m1, d1 := now.Date()
	y2, m2, d2 := t.Date()
	today := time.Date(y1, m1, d1, 0, 0, 0, 0, now.Location())
	day := time.Date(y2, m2, d2, 0, 0, 0, 0, now.Location())
	switch days := int(day.Sub(today).Round(time.Hour).Hours() / 24); {
	case days == 0:
		return "today " + t.Format("15:04:05")
	case days == 1:
		return "tomorrow " + t.Format("15:04")
	case days == -1:
		return "yesterday " + t.Format("15:04")
	case y1 == y2:
		return t.Format("Mon 2 Jan 15:04")
	}
	return t.Format("Mon 2 Jan 2006 15:04")
}
