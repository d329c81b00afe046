// Package version holds the build's version, stamped by the linker.
package version
