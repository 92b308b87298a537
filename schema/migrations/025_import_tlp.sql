-- The TLP marking of a confirmed import's file (its strictest): a measure holding material a
-- source marked TLP:RED is not shared with partners under a weaker marking.
ALTER TABLE imports ADD COLUMN tlp text NOT NULL DEFAULT '';
