package git

import "errors"

var (
	// ErrInvalid reports a ref, SHA or remote that failed validation; no
	// git process was started for it. It usually means bad input from a
	// webhook or a configuration file.
	ErrInvalid = errors.New("invalid")

	// ErrUnreachable reports that the remote could not be contacted or
	// read: it does not exist, the network or DNS failed, or it refused our
	// credentials. The error text carries the tail of git's stderr.
	ErrUnreachable = errors.New("remote unreachable")

	// ErrRefNotFound reports a branch, tag or commit that does not exist,
	// or an abbreviated SHA that matches more than one commit.
	ErrRefNotFound = errors.New("ref not found")

	// ErrSubmodules reports a tree that contains a gitlink.
	ErrSubmodules = errors.New("submodules are not supported yet")

	// ErrNotRepository reports a directory that is not the kind of git
	// repository the operation needs, and that fraisier will not overwrite.
	ErrNotRepository = errors.New("not a fraisier git repository")
)
