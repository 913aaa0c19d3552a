package catalog

import (
	"fmt"
	"strings"
)

// ReservedTagPrefixes start the tags the engine daemon puts on recovery
// points: "schedule:<name>@<created unix>" on every point a schedule makes
// (its retention tier counts only those), "retry-of:<run id>" on a retry's.
// A user tag with one of them could make a schedule's retention forget
// points it did not make, so they are refused on user-given tags.
var ReservedTagPrefixes = []string{"schedule:", "retry-of:"}

// CheckUserTag returns an error if tag starts with a reserved prefix.
func CheckUserTag(tag string) error {
	for _, p := range ReservedTagPrefixes {
		if strings.HasPrefix(tag, p) {
			return fmt.Errorf("tag %q starts with %q, which is reserved for the tags the engine daemon sets on scheduled recovery points: choose another tag", tag, p)
		}
	}
	return nil
}
