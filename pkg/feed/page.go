package feed

import (
	"github.com/wizfetch/wizfetch/pkg/wiz"
)

// mapped is a page's incidents, index for index with its issues.
type mapped struct {
	json  [][]byte   // each incident's JSON (nil for a rejected node)
	notes []nodeNote // nil when no node was rejected or clipped, else one per issue
}

// note returns what mapping found about issue i.
func (m mapped) note(i int) nodeNote {
	if i < len(m.notes) {
		return m.notes[i]
	}
	return nodeNote{}
}

// mapPage classifies and maps every node outside the transaction (pure CPU work, done by the
// stream's mapper while earlier pages commit when prefetching). A node that cannot be an incident
// gets a note with its rejection (guard.go).
func (f *Feed) mapPage(page *wiz.Page) mapped {
	m := mapped{json: make([][]byte, len(page.Issues))}
	note := func(i int, n nodeNote) {
		if m.notes == nil {
			m.notes = make([]nodeNote, len(page.Issues))
		}
		m.notes[i] = n
	}
	for i := range page.Issues {
		is := &page.Issues[i]
		var raw []byte
		if i < len(page.Raw) {
			raw = page.Raw[i]
		}
		if rej := checkIssue(is); rej != nil {
			note(i, nodeNote{rej: rej})
			continue
		}
		incJSON, clipped, rej := encodeIncident(f.opt.Mapper, f.opt.Classifier, is, raw)
		if rej != nil {
			note(i, nodeNote{rej: rej})
			continue
		}
		if clipped > 0 {
			note(i, nodeNote{clipped: clipped})
		}
		m.json[i] = incJSON
	}
	return m
}
