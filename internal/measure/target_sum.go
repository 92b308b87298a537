package measure

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
)

// TargetSum is a draft's target rows as a multiset hash: the sum, modulo 2^256, of each
// target's SHA-256. Adding and removing targets changes it by the sum of those added or
// removed alone, so the audit record of each draft edit can carry its change, and the seal can
// check that the rows it is about to seal are exactly those the recorded edits made, without
// trusting any running total kept in a table.
type TargetSum [4]uint64 // little-endian limbs

func targetPoint(t Target) TargetSum {
	var buf [256]byte
	h := sha256.Sum256(t.AppendJSON(append(buf[:0], "takedown.targets/sum\n"...)))
	var p TargetSum
	for i := range p {
		p[i] = binary.LittleEndian.Uint64(h[8*i:])
	}
	return p
}

// Add counts t in.
func (s *TargetSum) Add(t Target) { s.Plus(targetPoint(t)) }

// Plus adds another sum.
func (s *TargetSum) Plus(o TargetSum) {
	var carry uint64
	for i := range s {
		x := s[i] + o[i]
		c1 := x < s[i]
		y := x + carry
		c2 := y < x
		s[i], carry = y, 0
		if c1 || c2 {
			carry = 1
		}
	}
}

// Minus takes another sum away.
func (s *TargetSum) Minus(o TargetSum) {
	var borrow uint64
	for i := range s {
		x := s[i] - o[i]
		b1 := s[i] < o[i]
		y := x - borrow
		b2 := x < borrow
		s[i], borrow = y, 0
		if b1 || b2 {
			borrow = 1
		}
	}
}

// String is the sum in hex, most significant byte first.
func (s TargetSum) String() string {
	var b [32]byte
	for i := range s {
		binary.BigEndian.PutUint64(b[8*(3-i):], s[i])
	}
	return hex.EncodeToString(b[:])
}

// ParseTargetSum reads a sum written by String.
func ParseTargetSum(v string) (TargetSum, error) {
	var s TargetSum
	b, err := hex.DecodeString(v)
	if err != nil || len(b) != 32 {
		return s, fmt.Errorf("target sum %q is not 64 hex digits", Clip(v, 80))
	}
	for i := range s {
		s[i] = binary.BigEndian.Uint64(b[8*(3-i):])
	}
	return s, nil
}
