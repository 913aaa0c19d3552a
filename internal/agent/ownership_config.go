package agent

import (
	"fmt"
	"time"

	"github.com/hashicorp/hcl/v2"
)

var ownershipSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "renew_interval"},
		{Name: "expiry"},
		{Name: "clock_skew_margin"},
		{Name: "stop_deadline"},
	},
}

// parseOwnership reads the ownership block: the timing of the per-workload
// ownership lease. The expiry must leave room for several renewals, or one
// slow write of the volume would make a node stop its workloads, and
// renew_interval + stop_deadline + clock_skew_margin must stay below the
// expiry (see OwnershipConfig.validate).
func (p *configParser) parseOwnership(block *hcl.Block) {
	content, diags := block.Body.Content(ownershipSchema)
	p.diags = append(p.diags, diags...)
	o := DefaultOwnershipConfig()
	for _, f := range []struct {
		name   string
		target *time.Duration
	}{{"renew_interval", &o.RenewInterval}, {"expiry", &o.Expiry}, {"clock_skew_margin", &o.ClockSkewMargin}, {"stop_deadline", &o.StopDeadline}} {
		if a := content.Attributes[f.name]; a != nil {
			if d, ok := p.duration(a.Expr, f.name); ok {
				*f.target = d
			}
		}
	}
	if o.Expiry < 3*o.RenewInterval {
		p.errorAt(block.DefRange, "Ownership expiry too short",
			fmt.Sprintf("expiry (%s) must be at least three renewal intervals (renew_interval = %s), so that one late renewal does not stop the node's workloads; raise expiry or lower renew_interval", o.Expiry, o.RenewInterval))
	}
	if err := o.validate(); err != nil {
		p.errorAt(block.DefRange, "Ownership timing unsafe", err.Error())
	}
	p.cfg.Ownership = o
	p.cfg.ownershipSet = true
}

// ownershipOrDefault is cfg's lease timing, the defaults without an ownership block.
func (cfg *Config) ownershipOrDefault() OwnershipConfig {
	if cfg.ownershipSet {
		return cfg.Ownership
	}
	return DefaultOwnershipConfig()
}
