// An unmodified Node.js Lambda handler, run by aws-lambda-ric against eventrouter's Runtime API.
export const handler = async (event, context) => {
  if (event && event.fail) {
    throw new TypeError(`refused: ${event.fail}`);
  }
  return {
    echo: event,
    runtime: `node ${process.version}`,
    pid: process.pid,
    functionName: context.functionName,
    requestId: context.awsRequestId,
    remainingMs: context.getRemainingTimeInMillis(),
  };
};
