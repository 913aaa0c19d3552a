// Package schedule computes when a backup schedule is due: cron expressions
// in a time zone or plain intervals, start windows, deterministic jitter and
// catch-up after downtime. It is pure (no clock, no I/O): callers pass the
// time, so every rule is testable across DST changes.
//
// Glossary
//
//   - slot: one nominal due time of a schedule (UTC, whole seconds). The
//     pair (schedule, slot) identifies a run: a slot runs at most once.
//   - jitter: a delay in [0, jitter) added to each slot before it may start,
//     to spread schedules due at the same minute. It is a hash of the
//     schedule name and the slot, so every daemon (and every restart)
//     computes the same delay; it differs from slot to slot.
//   - start window: a slot may start from slot+jitter until slot+start
//     window; one that cannot is missed (with the reason). It is at most
//     the shortest gap between slots, so windows of consecutive slots do not
//     overlap, and longer than the jitter. Default: DefaultStartWindow, or
//     the shortest gap if shorter.
//   - completion window: how long a started run may take before it is
//     cancelled (0: no bound). CompletionDeadline applies it.
//   - catch-up: what happens to the latest slot whose window passed while no
//     daemon ran it: "latest" runs it once (late), "skip" records it missed.
//     Older slots are always missed: never a burst of runs after downtime.
//   - pending: slots after the last handled one and at or before now.
//
// Slot state model (the catalog stores the states; Decide says which slot
// enters which):
//
//	due --claimed by the leading daemon (Decision.Run)--> running
//	running --every workload captured--> succeeded
//	running --some captured--> partial
//	running --none captured, or past the completion window--> failed
//	due --start window passed, superseded, or catch-up skip (Decision.Missed)--> missed
//
// Paused schedules and schedules with a run in progress are the caller's
// concern: it does not call Decide for them (pending slots of a paused
// schedule are then missed or caught up when it resumes, like downtime).
//
// Interval schedules: slots are whole multiples of the interval counted
// from the Unix epoch (1970-01-01T00:00:00Z). Every daemon computes the same
// slots whenever it started; a 1h interval runs at the top of each UTC hour,
// a 7h interval at 00:00, 07:00, 14:00 UTC on 1970-01-01 and every 7 hours
// since. The interval is at least a minute and a whole number of seconds.
// Time zones do not apply.
//
// Cron schedules: a five-field expression (robfig/cron/v3 syntax, or
// @hourly, @daily, @weekly, @monthly, @yearly) read in time_zone (an IANA
// name; UTC if empty). Slots are computed here from robfig's parsed fields,
// with these DST rules:
//
//   - An expression whose hour field matches every hour (e.g. "*/15 * * * *",
//     "30 * * * *") follows real time: a slot is any instant whose local time
//     matches. Times a spring-forward skips do not exist and are not run; a
//     repeated hour (fall-back) runs twice. Gaps stay as on the clock face.
//   - Any other expression (fixed hours, e.g. "30 2 * * *") runs each
//     matching local date and time exactly once. A time repeated by a
//     fall-back runs at its first occurrence only. A time skipped by a
//     spring-forward (02:30 in Europe/Berlin on the last Sunday of March)
//     runs at the first instant after the gap (03:00 local), so a daily
//     backup is never silently lost once a year (robfig's own Next would
//     skip it); several skipped times collapse into that one slot. That day
//     the gap to the previous slot is shorter than usual (and longer in
//     autumn): MaxGap reports real time.
//
// Start windows and jitter are checked against the shortest gap on the
// clock face (without DST), so a daily 02:30 schedule may keep a 24h start
// window; when a DST change brings two slots closer, the newer one
// supersedes the older if both are pending.
package schedule
