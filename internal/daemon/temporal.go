package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/takedown/takedown/workflows"
)

// dialTemporal connects to Temporal, waiting for it with capped backoff while it does not
// answer (a cluster still starting, a network blip), and returns only when connected or ctx
// ends: a worker or serve started before its cluster comes up on its own.
func dialTemporal(ctx context.Context, opts client.Options, log *slog.Logger, waiting func()) (client.Client, error) {
	wait := time.Second
	for {
		dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		c, err := client.DialContext(dctx, opts)
		cancel()
		if err == nil {
			return c, nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("connect to Temporal at %s: %w", opts.HostPort, err)
		}
		log.Warn("Temporal does not answer; trying again", "address", opts.HostPort, "in", wait, "err", err)
		if waiting != nil {
			waiting()
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("connect to Temporal at %s: %w", opts.HostPort, err)
		case <-time.After(wait):
		}
		wait = min(2*wait, 30*time.Second)
	}
}

// setupCommands is what an operator who may not register namespaces runs instead (Temporal
// Cloud's namespaces are made in its console or with tcld).
func setupCommands(namespace string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "temporal operator namespace create --namespace %s --retention 30d\n", namespace)
	want := workflows.SearchAttributes()
	for _, name := range slices.Sorted(maps.Keys(want)) {
		typ := strings.TrimPrefix(want[name].String(), "INDEXED_VALUE_TYPE_")
		typ = map[string]string{"KEYWORD": "Keyword", "BOOL": "Bool", "DATETIME": "Datetime"}[typ]
		fmt.Fprintf(&b, "temporal operator search-attribute create --namespace %s --name %s --type %s\n", namespace, name, typ)
	}
	return b.String()
}

// SetupTemporal registers the namespace (kept retention long) if it does not exist and the
// search attributes the workflows keep, where missing. It is what `takedownd temporal-setup`
// runs and `dev` does on its own server; it does nothing that is already done.
func SetupTemporal(ctx context.Context, c client.Client, namespace string, retention time.Duration, log *slog.Logger) error {
	_, err := c.WorkflowService().DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: namespace})
	var nf *serviceerror.NamespaceNotFound
	switch {
	case errors.As(err, &nf):
		if _, err := c.WorkflowService().RegisterNamespace(ctx, &workflowservice.RegisterNamespaceRequest{
			Namespace: namespace, Description: "takedown: one workflow per measure request",
			WorkflowExecutionRetentionPeriod: durationpb.New(retention),
		}); err != nil {
			var exists *serviceerror.NamespaceAlreadyExists
			if !errors.As(err, &exists) {
				return fmt.Errorf("register namespace %s: %w\nif this account may not, ask the cluster's operator to run:\n%s", namespace, err, setupCommands(namespace))
			}
		}
		log.Info("Temporal namespace registered", "namespace", namespace, "retention", retention)
	case err != nil:
		return fmt.Errorf("describe namespace %s: %w", namespace, err)
	}
	// A namespace just registered reaches every frontend within seconds.
	var missing map[string]bool
	for try := 0; ; try++ {
		if missing, err = missingSearchAttributes(ctx, c, namespace); err == nil || try == 30 {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
	if err != nil {
		return err
	}
	if len(missing) == 0 {
		return nil
	}
	add, want := map[string]workflows.IndexedValueType{}, workflows.SearchAttributes()
	for name := range missing {
		add[name] = want[name]
	}
	if _, err := c.OperatorService().AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{Namespace: namespace, SearchAttributes: add}); err != nil {
		return fmt.Errorf("add search attributes to %s: %w\nif this account may not, ask the cluster's operator to run:\n%s", namespace, err, setupCommands(namespace))
	}
	log.Info("Temporal search attributes registered", "namespace", namespace, "names", slices.Sorted(maps.Keys(missing)))
	// They apply once the frontends' namespace caches refresh (every 10 s by default): until
	// then a workflow that sets them fails its task and is retried. Waited for here, so that
	// what runs next finds them in force.
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); {
		if applied(ctx, c, namespace, missing) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
	log.Warn("the search attributes are registered but not yet in force; workflows retry until they are", "namespace", namespace)
	return nil
}

// applied reports whether the namespace, as a frontend describes it, maps every name (SQL
// visibility keeps the mapping in the namespace's configuration; Elasticsearch maps none, and
// is waited for to the end).
func applied(ctx context.Context, c client.Client, namespace string, names map[string]bool) bool {
	res, err := c.WorkflowService().DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: namespace})
	if err != nil {
		return false
	}
	mapped := slices.Collect(maps.Values(res.GetConfig().GetCustomSearchAttributeAliases()))
	for name := range names {
		if !slices.Contains(mapped, name) {
			return false
		}
	}
	return true
}

// missingSearchAttributes lists the workflows' search attributes the namespace lacks. One
// registered with another type counts as missing (and adding it then fails, saying so).
func missingSearchAttributes(ctx context.Context, c client.Client, namespace string) (map[string]bool, error) {
	res, err := c.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: namespace})
	if err != nil {
		return nil, fmt.Errorf("list the search attributes of %s: %w", namespace, err)
	}
	missing := map[string]bool{}
	for name, typ := range workflows.SearchAttributes() {
		if got, ok := res.CustomAttributes[name]; !ok || got != typ {
			missing[name] = true
		}
	}
	return missing, nil
}

// checkTemporal refuses to run a worker or serve against a namespace that does not exist or
// lacks the search attributes: a workflow would fail at its first upsert. A cluster that does
// not let this account list them (some Temporal Cloud keys) is trusted, with a warning.
func checkTemporal(ctx context.Context, c client.Client, namespace string, log *slog.Logger) error {
	_, err := c.WorkflowService().DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: namespace})
	var nf *serviceerror.NamespaceNotFound
	if errors.As(err, &nf) {
		return fmt.Errorf("the Temporal namespace %q does not exist: run `takedownd temporal-setup` with the same -temporal-* flags, or ask the cluster's operator to run:\n%s", namespace, setupCommands(namespace))
	}
	if err != nil {
		return fmt.Errorf("describe the Temporal namespace %s: %w", namespace, err)
	}
	missing, err := missingSearchAttributes(ctx, c, namespace)
	var denied *serviceerror.PermissionDenied
	if errors.As(err, &denied) {
		log.Warn("cannot list the namespace's search attributes; assuming they are registered", "namespace", namespace, "err", err)
		return nil
	}
	if err != nil {
		return err
	}
	if len(missing) > 0 {
		return fmt.Errorf("the Temporal namespace %q lacks the search attributes %s: run `takedownd temporal-setup`, or ask the cluster's operator to run:\n%s",
			namespace, strings.Join(slices.Sorted(maps.Keys(missing)), ", "), setupCommands(namespace))
	}
	return nil
}
