// Command clibench measures fraisier's read commands as whole processes
// against a state database holding a million deployments and a million
// webhook events, next to a baseline measured in the same run.
package main
