package payload

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
)

func plain(t *testing.T, v any) *commonpb.Payload {
	t.Helper()
	p, err := converter.GetDefaultDataConverter().ToPayload(v)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSealedPayloadsHoldNoPlainText(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "payload.key")
	if _, err := Generate(path); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	secret := "plan: sinkhole c2.example.net, reason by officer yamada"
	sealed, err := c.Encode([]*commonpb.Payload{plain(t, secret)})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed[0].Data, []byte("yamada")) || bytes.Contains(sealed[0].Data, []byte("c2.example")) {
		t.Fatal("the sealed payload holds the plain text")
	}
	if got := string(sealed[0].Metadata[converter.MetadataEncoding]); got != Encoding {
		t.Fatalf("encoding %q, want %q", got, Encoding)
	}
	opened, err := c.Decode(sealed)
	if err != nil {
		t.Fatal(err)
	}
	var back string
	if err := converter.GetDefaultDataConverter().FromPayload(opened[0], &back); err != nil || back != secret {
		t.Fatalf("opened %q, %v", back, err)
	}
	// The same value sealed twice differs (a fresh nonce each time).
	again, _ := c.Encode([]*commonpb.Payload{plain(t, secret)})
	if bytes.Equal(again[0].Data, sealed[0].Data) {
		t.Fatal("two seals of one value are equal")
	}
}

func TestRotationKeepsOldHistoriesReadable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "payload.key")
	first, err := Generate(path)
	if err != nil {
		t.Fatal(err)
	}
	before, _ := Load(path)
	old, _ := before.Encode([]*commonpb.Payload{plain(t, "sealed before the rotation")})
	second, err := Generate(path)
	if err != nil {
		t.Fatal(err)
	}
	// Step 1: the new key opens but does not seal yet, so a process still on the old file
	// reads everything this one writes.
	during, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if ids := during.KeyIDs(); len(ids) != 2 || ids[0] != first {
		t.Fatalf("keys %v after adding one; the old key %s must still seal", ids, first)
	}
	if _, err := Promote(path); err != nil {
		t.Fatal(err)
	}
	after, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if ids := after.KeyIDs(); len(ids) != 2 || ids[0] != second || ids[1] != first {
		t.Fatalf("keys %v, want [%s %s]", ids, second, first)
	}
	// Promoting again (a repeated command, a script run twice) changes nothing: the old key
	// does not come back to seal. A third key cannot be added while one waits.
	if _, err := Promote(path); err == nil || !strings.Contains(err.Error(), "no key waiting") {
		t.Fatalf("a second promotion: %v", err)
	}
	if again, _ := Load(path); again.KeyIDs()[0] != second {
		t.Fatalf("after a second promotion %s seals, want %s", again.KeyIDs()[0], second)
	}
	third, err := Generate(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Generate(path); err == nil || !strings.Contains(err.Error(), third) {
		t.Fatalf("a fourth key while the third waits: %v", err)
	}
	if got, err := Promote(path); err != nil || got != third {
		t.Fatalf("promote the third: %s, %v", got, err)
	}
	if _, err := Promote(path); err == nil {
		t.Fatal("promoting again after the third brought another key back")
	}
	if ids, _ := Load(path); ids.KeyIDs()[0] != third || len(ids.KeyIDs()) != 3 {
		t.Fatalf("keys %v, want %s sealing among 3", ids.KeyIDs(), third)
	}
	if _, err := after.Decode(old); err != nil {
		t.Fatalf("an old payload after the rotation: %v", err)
	}
	fresh, _ := after.Encode([]*commonpb.Payload{plain(t, "x")})
	if got := string(fresh[0].Metadata[MetadataKeyID]); got != second {
		t.Fatalf("sealed under %s, want the new key %s", got, second)
	}
	if _, err := during.Decode(fresh); err != nil {
		t.Fatalf("a process between the two steps cannot open what a promoted one sealed: %v", err)
	}
	// The old key alone cannot read what the new one sealed, and says which key it lacks.
	if _, err := before.Decode(fresh); err == nil || !strings.Contains(err.Error(), second) {
		t.Fatalf("the old key opened a new payload, or did not name the key: %v", err)
	}
}

func TestAlteredPayloadsDoNotOpen(t *testing.T) {
	c, _ := New(bytes.Repeat([]byte{1}, KeySize), bytes.Repeat([]byte{2}, KeySize))
	sealed, _ := c.Encode([]*commonpb.Payload{plain(t, "approved: 3 targets")})
	for name, alter := range map[string]func(p *commonpb.Payload){
		"a flipped bit":   func(p *commonpb.Payload) { p.Data[len(p.Data)-1] ^= 1 },
		"cut short":       func(p *commonpb.Payload) { p.Data = p.Data[:5] },
		"relabelled":      func(p *commonpb.Payload) { p.Metadata[MetadataKeyID] = []byte(c.KeyIDs()[1]) },
		"an unknown key":  func(p *commonpb.Payload) { p.Metadata[MetadataKeyID] = []byte("nope\x00\n") },
		"no data at all":  func(p *commonpb.Payload) { p.Data = nil },
		"nonce replaced":  func(p *commonpb.Payload) { copy(p.Data, make([]byte, 12)) },
		"empty key label": func(p *commonpb.Payload) { delete(p.Metadata, MetadataKeyID) },
	} {
		p := &commonpb.Payload{Metadata: map[string][]byte{}, Data: append([]byte(nil), sealed[0].Data...)}
		for k, v := range sealed[0].Metadata {
			p.Metadata[k] = v
		}
		alter(p)
		if _, err := c.Decode([]*commonpb.Payload{p}); err == nil {
			t.Errorf("%s: opened", name)
		}
	}
	// A payload never sealed is refused: anyone who reaches the cluster could write it. Only
	// an operator's AcceptPlaintext lets histories from before encryption replay.
	p := plain(t, "written before")
	if _, err := c.Decode([]*commonpb.Payload{p}); !errors.Is(err, ErrUnsealed) {
		t.Fatalf("a plain payload: %v, want ErrUnsealed", err)
	}
	c.AcceptPlaintext = true
	got, err := c.Decode([]*commonpb.Payload{p})
	if err != nil || got[0] != p {
		t.Fatalf("a plain payload with AcceptPlaintext: %v", err)
	}
}

func TestKeyFilesRefusedPlainly(t *testing.T) {
	dir := t.TempDir()
	one := filepath.Join(dir, "one")
	if _, err := Generate(one); err != nil {
		t.Fatal(err)
	}
	if _, err := Promote(one); err == nil {
		t.Error("a file of one key was promoted")
	}
	for name, content := range map[string]string{
		"empty":        "",
		"comment only": "# nothing\n",
		"short key":    keyTag + "abcd\n",
		"no tag":       strings.Repeat("ab", KeySize) + "\n",
		"append key":   "takedown-append-key-v1:" + strings.Repeat("ab", KeySize) + "\n",
		"same twice":   keyTag + strings.Repeat("ab", KeySize) + "\n" + keyTag + strings.Repeat("ab", KeySize) + "\n",
		"control char": keyTag + strings.Repeat("ab", KeySize-1) + "a\x00\n",
	} {
		path := filepath.Join(dir, strings.ReplaceAll(name, " ", "-"))
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := Load(path); err == nil {
			t.Errorf("%s: loaded", name)
		} else if !strings.Contains(err.Error(), path) {
			t.Errorf("%s: the error does not name the file: %v", name, err)
		}
	}
	if _, err := Load(filepath.Join(dir, "missing")); err == nil {
		t.Error("a missing file loaded")
	}
}

// FuzzDecodePayload: whatever a cluster or a codec request hands back, Decode answers an
// error or a payload, never a panic.
func FuzzDecodePayload(f *testing.F) {
	c, _ := New(bytes.Repeat([]byte{7}, KeySize))
	sealed, _ := c.Encode([]*commonpb.Payload{{Data: []byte(`"x"`)}})
	f.Add(sealed[0].Data, c.KeyIDs()[0])
	f.Add([]byte{}, "")
	f.Fuzz(func(t *testing.T, data []byte, id string) {
		p := &commonpb.Payload{Metadata: map[string][]byte{converter.MetadataEncoding: []byte(Encoding), MetadataKeyID: []byte(id)}, Data: data}
		_, _ = c.Decode([]*commonpb.Payload{p})
	})
}
