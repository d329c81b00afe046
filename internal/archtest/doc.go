// Package archtest holds no code: its tests read ARCHITECTURE.md's layer
// and imports tables and check the module's packages against them, so the
// page stays true and the dependency direction stays one-way.
package archtest
