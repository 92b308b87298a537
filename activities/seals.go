package activities

import "sync"

// sealCache remembers, for the versions being executed, the target values last read whole
// and found to hash to the seal. A batch of steps is judged against that set; re-reading every
// row for every batch made logging a 700,000-target measure quadratic (70 batches, each
// reading 700,000 rows; even counting them took tens of milliseconds a batch). The rows are still read
// whole again once the targets the batches named since the last reading reach the targets'
// number (so reading costs at most one row per target named), and at finishing; a measure of
// fewer than cachedFrom targets is read whole at every batch. A row rewritten, added or removed
// in SQL meanwhile is never judged by: steps are judged against the set that hashed to the
// seal, and the alteration is refused at the next reading.
type sealCache struct {
	mu sync.Mutex
	m  map[sealKey]*sealedSet
}

type sealKey struct {
	measure string
	version int
	digest  string
}

type sealedSet struct {
	values map[string]bool
	n      int
	since  int // targets named by batches since the rows were last read whole
}

// cachedFrom is the number of targets from which a version's set is remembered: below it,
// reading the rows costs less than a batch's other work.
const cachedFrom = 10_000

// maxSealedSets bounds the versions remembered at once (each up to a few tens of MB).
const maxSealedSets = 4

// judge returns the values of only that are targets of the version, from the set remembered,
// and ok; not ok when the rows must be read whole again. n is the number of targets sealed.
func (c *sealCache) judge(key sealKey, n int, only map[string]bool) (known []string, ok bool) {
	c.mu.Lock()
	set := c.m[key]
	fresh := set != nil && set.n == n && n >= cachedFrom && set.since+len(only) < n
	c.mu.Unlock()
	if !fresh {
		return nil, false
	}
	for v := range only {
		if set.values[v] {
			known = append(known, v)
		}
	}
	c.mu.Lock()
	set.since += len(only)
	c.mu.Unlock()
	return known, true
}

// keep remembers the values of a version whose rows were just read whole and hashed to its seal.
func (c *sealCache) keep(key sealKey, values map[string]bool, n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[sealKey]*sealedSet{}
	}
	if _, ok := c.m[key]; !ok && len(c.m) >= maxSealedSets {
		for k := range c.m { // any one: a version evicted is read whole at its next batch
			delete(c.m, k)
			break
		}
	}
	c.m[key] = &sealedSet{values: values, n: n}
}

// forget drops a version whose rows no longer hash to its seal.
func (c *sealCache) forget(key sealKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, key)
}
