package schedule

import (
	"errors"
	"fmt"
	"strings"
	"time"
	_ "time/tzdata" // every daemon reads zones the same, even without a system zoneinfo

	"github.com/robfig/cron/v3"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog"
)

// MinInterval is the shortest interval schedule.
const MinInterval = time.Minute

// Field names used in FieldError, as in the Terraform resource.
const (
	FieldCron             = "cron"
	FieldTimeZone         = "time_zone"
	FieldInterval         = "interval"
	FieldStartWindow      = "start_window"
	FieldCompletionWindow = "completion_window"
	FieldJitter           = "jitter"
	FieldCatchUp          = "catch_up"
)

// FieldError is one problem of a schedule: the field and what to do.
type FieldError struct {
	Field   string
	Message string
	Err     error // the underlying parser error, if any
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Message }
func (e *FieldError) Unwrap() error { return e.Err }

// cronParser reads five-field expressions and descriptors (@daily...).
var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// Validate returns every problem of s (nil if none), for plan-time
// diagnostics; Parse refuses a schedule with any.
func Validate(s catalog.Schedule) []*FieldError {
	_, errs := build(s)
	return errs
}

// Parse validates s and returns its plan. Its error wraps every
// *FieldError (errors.As finds the first).
func Parse(s catalog.Schedule) (*Plan, error) {
	p, errs := build(s)
	if len(errs) > 0 {
		list := make([]error, len(errs))
		for i, e := range errs {
			list[i] = e
		}
		return nil, fmt.Errorf("schedule %q: %w", s.Name, errors.Join(list...))
	}
	return p, nil
}

func build(s catalog.Schedule) (*Plan, []*FieldError) {
	var errs []*FieldError
	bad := func(field string, err error, format string, args ...any) {
		errs = append(errs, &FieldError{Field: field, Message: fmt.Sprintf(format, args...), Err: err})
	}
	p := &Plan{name: s.Name, interval: s.Interval, jitter: s.Jitter, catchUp: s.CatchUp,
		completionWindow: s.CompletionWindow, notBefore: s.CreatedAt.UTC(), loc: time.UTC}
	if s.CreatedAt.IsZero() {
		p.notBefore = time.Time{}
	}

	expr := strings.TrimSpace(s.Cron)
	loc, tzErr := loadZone(s.TimeZone)
	switch {
	case expr != "" && s.Interval != 0:
		bad(FieldInterval, nil, "set either cron or interval, not both")
	case expr == "" && s.Interval == 0:
		bad(FieldCron, nil, "set cron (e.g. \"30 2 * * *\" or \"@daily\") or interval (e.g. 1h)")
	case expr != "":
		if tzErr != nil {
			errs = append(errs, tzErr)
		} else {
			p.loc = loc
		}
		p.cron = parseCron(expr, p.loc, bad)
	default:
		switch {
		case s.Interval < MinInterval:
			bad(FieldInterval, nil, "%s is shorter than the minimum of %s; set at least %s", s.Interval, MinInterval, MinInterval)
		case s.Interval%time.Second != 0:
			bad(FieldInterval, nil, "%s is not a whole number of seconds (slots are recorded to the second); round it, e.g. to %s", s.Interval, s.Interval.Truncate(time.Second))
		}
		if tzErr != nil {
			errs = append(errs, tzErr)
		} else if loc != time.UTC {
			bad(FieldTimeZone, nil, "%q applies to cron schedules only: interval slots are counted from the Unix epoch, the same in every zone; remove time_zone or use cron", s.TimeZone)
		}
	}
	if len(errs) > 0 {
		// Windows are checked against the slots, which are unknown.
		checkRanges(s, bad)
		return nil, errs
	}

	gap := p.shortestNominalGap()
	p.startWindow = s.StartWindow
	switch {
	case s.StartWindow < 0:
		bad(FieldStartWindow, nil, "%s is negative; set a positive duration (0 means the default, %s)", s.StartWindow, DefaultStartWindow)
	case s.StartWindow == 0:
		p.startWindow = min(DefaultStartWindow, gap)
	case s.StartWindow > gap:
		bad(FieldStartWindow, nil, "%s is longer than the shortest gap between slots (%s), so a slot's window would overlap the next slot; set at most %s", s.StartWindow, gap, gap)
	}
	switch {
	case s.Jitter < 0:
		bad(FieldJitter, nil, "%s is negative; set 0 or a positive duration", s.Jitter)
	case s.Jitter > 0 && p.startWindow > 0 && s.Jitter >= p.startWindow:
		bad(FieldJitter, nil, "%s is not shorter than the start window (%s; the shortest gap between slots is %s), so a slot could be delayed past its window; set less than %s", s.Jitter, p.startWindow, gap, p.startWindow)
	}
	checkRanges(s, bad)
	if p.catchUp == "" {
		p.catchUp = catalog.CatchUpLatest
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return p, nil
}

// checkRanges checks the fields that need no slots.
func checkRanges(s catalog.Schedule, bad func(string, error, string, ...any)) {
	if s.CompletionWindow < 0 {
		bad(FieldCompletionWindow, nil, "%s is negative; set 0 (no bound) or a positive duration", s.CompletionWindow)
	}
	switch s.CatchUp {
	case "", catalog.CatchUpLatest, catalog.CatchUpSkip:
	default:
		bad(FieldCatchUp, nil, "%q is not a catch-up policy; set %q (run the latest missed slot once) or %q (record missed slots and wait)", s.CatchUp, catalog.CatchUpLatest, catalog.CatchUpSkip)
	}
}

func loadZone(name string) (*time.Location, *FieldError) {
	switch name {
	case "", "UTC":
		return time.UTC, nil
	case "Local":
		return nil, &FieldError{Field: FieldTimeZone, Message: "\"Local\" depends on each machine's settings; set an IANA zone name such as \"Europe/Berlin\" or \"UTC\""}
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, &FieldError{Field: FieldTimeZone, Err: err,
			Message: fmt.Sprintf("%q is not a known IANA time zone (%v); set a name such as \"Europe/Berlin\", \"America/New_York\" or \"UTC\"", name, err)}
	}
	if loc.String() == "UTC" || name == "Etc/UTC" {
		return time.UTC, nil
	}
	return loc, nil
}

func parseCron(expr string, loc *time.Location, bad func(string, error, string, ...any)) *cronSpec {
	if strings.Contains(strings.ToUpper(expr), "TZ=") {
		bad(FieldCron, nil, "%q sets a time zone inside the expression; remove the CRON_TZ=/TZ= prefix and set time_zone instead (e.g. \"Europe/Berlin\")", expr)
		return nil
	}
	if strings.HasPrefix(expr, "@every") {
		bad(FieldCron, nil, "%q: @every is not supported; set interval instead (e.g. 1h), whose slots every daemon computes alike", expr)
		return nil
	}
	parsed, err := cronParser.Parse(expr)
	if err != nil {
		bad(FieldCron, err, "%q is not a valid cron expression (%v); use five fields, minute hour day-of-month month day-of-week, e.g. \"30 2 * * *\", or a descriptor: @hourly, @daily, @weekly, @monthly, @yearly", expr, err)
		return nil
	}
	spec, ok := parsed.(*cron.SpecSchedule)
	if !ok {
		bad(FieldCron, nil, "%q is not supported; use five fields, e.g. \"30 2 * * *\"", expr)
		return nil
	}
	c, ok := newCronSpec(spec, loc)
	if !ok {
		bad(FieldCron, nil, "%q never matches a date (e.g. February 30); fix its day-of-month and month fields", expr)
		return nil
	}
	return c
}
