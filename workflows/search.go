package workflows

import (
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// The search attributes a measure's workflow keeps, so that operators find measures with
// `temporal workflow list --query` without reading a history. They carry only facts that are
// no secret to whoever runs the cluster: the stage, the owning organisation's ID, whether it
// is an emergency measure, and its next deadline (overdue: TakedownDeadline < now).
var (
	SearchStage     = temporal.NewSearchAttributeKeyKeyword("TakedownStage")
	SearchOrg       = temporal.NewSearchAttributeKeyKeyword("TakedownOrg")
	SearchEmergency = temporal.NewSearchAttributeKeyBool("TakedownEmergency")
	SearchDeadline  = temporal.NewSearchAttributeKeyTime("TakedownDeadline")
)

// IndexedValueType is the type of a search attribute.
type IndexedValueType = enumspb.IndexedValueType

// SearchAttributes are the attributes a namespace must have registered before a worker runs
// (takedownd temporal-setup registers them), by name and type.
func SearchAttributes() map[string]IndexedValueType {
	return map[string]IndexedValueType{
		SearchStage.GetName():     enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		SearchOrg.GetName():       enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		SearchEmergency.GetName(): enumspb.INDEXED_VALUE_TYPE_BOOL,
		SearchDeadline.GetName():  enumspb.INDEXED_VALUE_TYPE_DATETIME,
	}
}

// published is what the workflow last told Temporal's visibility.
type published struct {
	set       bool
	stage     string
	emergency bool
	deadline  time.Time
}

// publish updates the search attributes when the state they show has changed. Measures started
// under rules revision 3 or later only: an older history replays without these commands.
func (w *measureWorkflow) publish(ctx workflow.Context) error {
	if w.s.Rules < 3 {
		return nil
	}
	now := published{set: true, stage: string(w.s.Stage), emergency: w.s.Emergency}
	if _, at, ok := w.nextDeadline(); ok {
		now.deadline = at
	}
	if now == w.shown {
		return nil
	}
	updates := []temporal.SearchAttributeUpdate{SearchStage.ValueSet(now.stage), SearchEmergency.ValueSet(now.emergency)}
	if !w.shown.set && w.in.Org != "" {
		updates = append(updates, SearchOrg.ValueSet(w.in.Org))
	}
	if now.deadline.IsZero() {
		updates = append(updates, SearchDeadline.ValueUnset())
	} else {
		updates = append(updates, SearchDeadline.ValueSet(now.deadline))
	}
	if err := workflow.UpsertTypedSearchAttributes(ctx, updates...); err != nil {
		return err
	}
	w.shown = now
	return nil
}
