package daemon

// setInactive remembers why this leader saw a schedule not running ("" to
// forget), so the slots missed meanwhile say so once recorded.
func (d *Daemon) setInactive(name, why string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if why == "" {
		delete(d.inactive, name)
		return
	}
	d.inactive[name] = why
}

// whyInactive says why a slot that passed unstarted was not run. What
// this leader saw is known; otherwise the cause may be from before it led
// (no daemon leading, or paused or broken under another leader, which
// this one cannot know).
func (d *Daemon) whyInactive(name string) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	if why := d.inactive[name]; why != "" {
		return why
	}
	return "no engine daemon was leading then, or the schedule was paused or did not parse"
}
