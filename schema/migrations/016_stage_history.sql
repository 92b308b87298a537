-- Every stage a measure entered, and when: what My work's deadlines, the measure search (an
-- emergency is a measure that entered EMERGENCY_EXECUTING) and the statistics for the Diet read.
-- The audit log holds the same transitions, signed; this is the domain's own projection of
-- them, kept by a trigger so that no writer of measures can forget it.
CREATE TABLE stage_history (
    measure_id text NOT NULL REFERENCES measures (id),
    stage      text NOT NULL,
    version    integer NOT NULL,
    entered_at timestamptz NOT NULL
);
CREATE INDEX stage_history_measure ON stage_history (measure_id, entered_at);
CREATE INDEX stage_history_stage ON stage_history (stage, entered_at);

CREATE FUNCTION measures_stage_entered() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' OR NEW.stage IS DISTINCT FROM OLD.stage THEN
        INSERT INTO stage_history (measure_id, stage, version, entered_at)
        VALUES (NEW.id, NEW.stage, NEW.version, clock_timestamp());
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER measures_stage_history AFTER INSERT OR UPDATE OF stage ON measures
    FOR EACH ROW EXECUTE FUNCTION measures_stage_entered();

-- Measures from before this migration: their transitions, from the audit records.
INSERT INTO stage_history (measure_id, stage, version, entered_at)
SELECT e.measure_id, r->>'to', COALESCE((r->>'version')::integer, 1), (r->>'ts')::timestamptz
FROM audit_entries e CROSS JOIN LATERAL (SELECT convert_from(e.record, 'UTF8')::jsonb AS r) x
WHERE e.measure_id IS NOT NULL AND COALESCE(r->>'to', '') <> '' AND r->>'to' IS DISTINCT FROM r->>'from'
  AND r->>'action' NOT LIKE 'refused.%'
  AND EXISTS (SELECT 1 FROM measures m WHERE m.id = e.measure_id);

-- The measure search finds measures by a target's value prefix, in every organisation's
-- measures at once.
CREATE INDEX targets_value_prefix ON targets (value text_pattern_ops);

-- My work and the measure list read measures in the order they last changed.
CREATE INDEX measures_updated ON measures (updated_at, id);
