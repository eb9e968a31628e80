// The node drivers' shared bits: run each cell, keep what it saw or the error, print one JSON line.
export const URL = process.argv[2] ?? 'http://127.0.0.1:8787';
export const TASK = 'tierwise/review_code';
export const EXPLICIT = 'claude-haiku-5-5';
export const KEY = 'sk-ant-dummy-client-key';
export const CELLS = {};

// the tool every driver offers; the offline upstream calls it for "run `...`" (upstream/offline_agent.py)
export const TOOL = {
  name: 'run_command', description: 'Run a shell command and return its output',
  input_schema: { type: 'object', properties: { command: { type: 'string' } }, required: ['command'] },
};
export const RECORD = {
  name: 'record_city', description: 'Record a city and its population',
  input_schema: { type: 'object', properties: { city: { type: 'string' }, population: { type: 'integer' } },
                  required: ['city', 'population'] },
};

export const ask = (cell, text = 'Say hello in one short sentence.') => `[cell:${cell}] ${text}`;
export const runTool = (command) => command.replace(/^echo /, '').trim() + '\n';

export async function cell(name, fn) {
  try {
    CELLS[name] = await fn();
  } catch (err) {
    CELLS[name] = { error: `${err?.constructor?.name}: ${err?.message ?? err}`.slice(0, 1500),
                    trace: String(err?.stack ?? '').slice(-2000) };
  }
}

export function done() {
  process.stdout.write(JSON.stringify(CELLS) + '\n');
}
