// Command gendocs writes fraisier's man pages (one per command, gzipped)
// and its bash, zsh and fish completion scripts from the command tree, for
// `make package` to put in the Debian package.
package main
