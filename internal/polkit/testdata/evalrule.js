// Evaluates a polkit rule file the way polkitd does, with a fake polkit
// object (polkitd needs a booted system bus): the rule file runs in a
// fresh global scope whose only name is `polkit`; every function it hands
// to polkit.addRule is then called, in order, for each case on standard
// input until one returns a result other than NOT_HANDLED (null).
//
// stdin: {"rule": "<file>", "cases": [{"action", "user", "unit", "verb"}]}
// stdout: {"rules": <addRule calls>, "globals": [<names the file defined>],
//          "results": ["yes" | null | ...]}
"use strict";
const fs = require("fs");
const vm = require("vm");

const input = JSON.parse(fs.readFileSync(0, "utf8"));
const rules = [];
const sandbox = {
  polkit: {
    // polkitd's values: strings, and null for NOT_HANDLED.
    Result: {
      NO: "no", YES: "yes", AUTH_SELF: "auth_self", AUTH_SELF_KEEP: "auth_self_keep",
      AUTH_ADMIN: "auth_admin", AUTH_ADMIN_KEEP: "auth_admin_keep", NOT_HANDLED: null,
    },
    addRule: (f) => rules.push(f),
    addAdminRule: () => {},
    log: () => {},
  },
};
vm.runInNewContext(fs.readFileSync(input.rule, "utf8"), sandbox, { filename: input.rule });

const results = input.cases.map((c) => {
  const details = {};
  if (c.unit !== undefined) details.unit = c.unit;
  if (c.verb !== undefined) details.verb = c.verb;
  const action = {
    id: c.action,
    lookup: (k) => (Object.prototype.hasOwnProperty.call(details, k) ? details[k] : undefined),
  };
  const subject = {
    user: c.user, pid: 4242, local: false, active: false, session: "", groups: [],
    isInGroup: () => false, isInNetGroup: () => false,
  };
  for (const f of rules) {
    const r = f(action, subject);
    if (r !== null && r !== undefined) return r;
  }
  return null;
});
process.stdout.write(JSON.stringify({
  rules: rules.length,
  globals: Object.keys(sandbox).filter((k) => k !== "polkit"),
  results: results,
}));
