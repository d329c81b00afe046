// Package cli is fraisier's command line: it wires cobra commands to the
// config, store and engine packages and renders their answers for people
// (aligned columns) or programs (--json).
package cli
