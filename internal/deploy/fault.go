package deploy

// FaultEnv names the environment variable the CLI reads a fault from. It is
// for tests only: see Fault.
const FaultEnv = "FRAISIER_FAULT"

// FaultRecord is the fault point between deciding a deployment's outcome
// and writing it with FinishDeployment.
const FaultRecord = "record"

// Fault is a test-only fault-injection point: when the engine reaches it,
// the process sends itself SIGKILL, so that tests can prove what a real
// crash at that exact point leaves and what the next run makes of it. The
// zero Fault never fires; only ParseFault makes one, and the CLI calls it
// only with the value of FRAISIER_FAULT.
//
// The killing is compiled in only with the build tag fraisier_faults
// (FaultInjection says whether it was): test binaries and the binaries
// tests build have it, the shipped binary does not, and there ParseFault
// makes no fault of anything, so FRAISIER_FAULT does nothing.
type Fault struct {
	// Step is a step's recorded name ("switch", "rollback health") or
	// FaultRecord.
	Step string
	// After fires once the step is recorded finished; otherwise the step
	// has been recorded as running and its work has not begun.
	After bool
}

func (f Fault) String() string {
	if f.Step == "" {
		return ""
	}
	if f.Step == FaultRecord {
		return "kill:" + FaultRecord
	}
	if f.After {
		return "kill:" + f.Step + ":after"
	}
	return "kill:" + f.Step + ":before"
}
