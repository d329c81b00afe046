// Package git is everything fraisier does with git, done by running the git
// binary through execx with a hardened environment: bare mirrors of remotes,
// ref resolution, history queries, exports of exact trees into release
// directories, and in-place checkouts.
package git
