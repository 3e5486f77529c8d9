package store

import (
	_ "embed"
	"fmt"
	"slices"

	"github.com/klauspost/compress/s2"

	"github.com/wizfetch/wizfetch/pkg/store/internal/s2dict"
)

// Incidents all have the same shape: the same keys, labels and custom fields, and a raw node with the
// same GraphQL selection. So the store compresses them with an S2 dictionary of a few typical
// incidents (incident_dict_v1.json: incidents the simulator generates, no real data): at 50k
// simulated issues the documents shrink from about 1.6 to 0.9 KB each, which is fewer bytes for
// every page commit to write and fsync and a store a third smaller, at the same compression speed.
//
// A stored value names its dictionary by its codec byte, so this file must never change: a better
// dictionary gets a file and codec bytes of its own, and this one stays to read what it wrote.

//go:embed incident_dict_v1.json
var incidentDictV1Data []byte

// incidentDictV1 is the dictionary of codecS2Dict1 and codecEventDict1 values.
var incidentDictV1 = func() *s2.Dict {
	d := s2.MakeDict(incidentDictV1Data, nil)
	if d == nil {
		panic("store: the embedded incident dictionary is not a valid S2 dictionary")
	}
	return d
}()

// incidentDictV1Encoder writes the blocks of incidentDictV1: s2's dictionary encoder with a
// smaller table of the input's own positions (internal/s2dict), which s2's decoder reads as any
// other block of the dictionary.
var incidentDictV1Encoder = s2dict.New(incidentDictV1)

// appendDict1 appends data compressed with incidentDictV1, after the codec byte, to dst.
func appendDict1(dst []byte, codec byte, data []byte) []byte {
	need := 1 + s2.MaxEncodedLen(len(data))
	dst = slices.Grow(dst, need)
	dst = append(dst, codec)
	enc := incidentDictV1Encoder.Encode(dst[len(dst):len(dst)+need-1], data)
	return dst[:len(dst)+len(enc)]
}

// appendBlock appends the data of an S2 block (plain for codecS2 and codecEvent, with incidentDictV1
// for codecS2Dict1 and codecEventDict1) to dst.
func appendBlock(dst []byte, codec byte, block []byte) ([]byte, error) {
	n, err := decodedLen(block)
	if err != nil {
		return dst, err
	}
	start := len(dst)
	dst = slices.Grow(dst, n)
	var out []byte
	switch codec {
	case codecS2, codecEvent:
		out, err = s2.Decode(dst[len(dst):len(dst)+n], block)
	case codecS2Dict1, codecEventDict1:
		out, err = incidentDictV1.Decode(dst[len(dst):len(dst)+n], block)
	default:
		return dst, fmt.Errorf("codec %#x holds no S2 block", codec)
	}
	if err != nil {
		return dst[:start], err
	}
	return dst[:len(dst)+len(out)], nil
}
