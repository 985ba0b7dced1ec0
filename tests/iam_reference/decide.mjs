// Decides each case read from stdin (a JSON array) with @cloud-copilot/iam-simulate and
// writes a JSON array of {result, errors} to stdout. Test-only, used by
// tests/unit/test_policy_differential.py.
import { anonymousPrincipal, runSimulation } from '@cloud-copilot/iam-simulate'

const chunks = []
for await (const chunk of process.stdin) chunks.push(chunk)
const cases = JSON.parse(Buffer.concat(chunks).toString())
const out = []
for (const c of cases) {
  const simulation = {
    identityPolicies: c.identity ? [{ name: 'role', policy: c.identity }] : [],
    serviceControlPolicies: [],
    resourceControlPolicies: [],
    resourcePolicy: c.resource_policy || undefined,
    request: {
      principal: c.principal === '*' ? anonymousPrincipal : c.principal,
      action: c.action,
      resource: { resource: c.resource, accountId: c.account },
      contextVariables: c.context
    }
  }
  const response = await runSimulation(simulation, {})
  if (response.errors) {
    out.push({ result: null, errors: response.errors })
  } else {
    out.push({ result: response.result.analysis.result, errors: null })
  }
}
process.stdout.write(JSON.stringify(out))
