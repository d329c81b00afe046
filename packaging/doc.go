// Package packaging is the home of fraisier's Debian package: what it ships
// besides the binary (systemd/, sysusers.d/, tmpfiles.d/, debian/), nfpm's
// configuration, the program that writes the man pages and completions
// (gendocs), and BuildDeb, which builds the package as `make package` does
// for tests that install it. Its tests check those files with systemd's and
// dpkg's own tools and against the binary they start.
package packaging
