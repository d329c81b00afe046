// Package archtest holds no code: its test enforces the one-way dependency
// direction between fraisier's packages described in ARCHITECTURE.md.
package archtest
