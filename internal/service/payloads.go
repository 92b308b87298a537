package service

import (
	"context"

	"github.com/takedown/takedown/authz"
)

// MayDecodePayloads allows an auditor to have Temporal's UI or CLI decode workflow histories
// through the codec endpoint: what they show is case content, read by who may read every case.
// Anyone else is refused, and the refusal is audited.
func (s *Service) MayDecodePayloads(ctx context.Context, a authz.Actor) error {
	if a.Has(authz.Auditor) {
		return nil
	}
	return s.refuse(ctx, a, On{}, "read.payloads", &authz.Denied{Rule: "role", Reason: "workflow histories are decoded for auditors only"})
}
