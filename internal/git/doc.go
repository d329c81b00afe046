// Package git is everything fraisier does with git. It runs the git binary
// through execx with a hardened environment and configuration, so that
// nothing a repository, a fetched tree or the host's git configuration
// says can run code or change what is checked out. It keeps a bare mirror
// of each remote, resolves names to commits there, answers history
// questions, and writes releases: exact trees exported into release
// directories, or in-place checkouts.
package git
