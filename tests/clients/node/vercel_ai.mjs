// The Vercel AI SDK (ai + @ai-sdk/anthropic) against the proxy: what it offers.
import { generateText, streamText, Output, tool, stepCountIs, APICallError } from 'ai';
import { createAnthropic } from '@ai-sdk/anthropic';
import { z } from 'zod';
import { URL, TASK, EXPLICIT, KEY, ask, runTool, cell, done } from './_cells.mjs';

const anthropic = createAnthropic({ baseURL: `${URL}/v1`, apiKey: KEY });
const runCommand = tool({
  description: 'Run a shell command and return its output',
  inputSchema: z.object({ command: z.string() }),
  execute: async ({ command }) => runTool(command),
});

for (const [name, model] of [['create_auto', 'auto'], ['create_task', TASK], ['create_explicit', EXPLICIT]]) {
  await cell(name, async () => {
    const r = await generateText({ model: anthropic(model), maxRetries: 0, prompt: ask(name), maxOutputTokens: 200 });
    return { text: r.text, model: r.response.modelId,
             usage: { input_tokens: r.usage.inputTokens, output_tokens: r.usage.outputTokens },
             headers: Object.fromEntries(Object.entries(r.response.headers ?? {}).filter(([k]) => k.startsWith('x-tierwise-'))) };
  });
}

await cell('stream', async () => {
  const r = streamText({ model: anthropic('auto'), maxRetries: 0, prompt: ask('stream'), maxOutputTokens: 200 });
  const chunks = [];
  for await (const t of r.textStream) chunks.push(t);
  const usage = await r.usage;
  return { chunks: chunks.length, text: chunks.join(''), usage: { input_tokens: usage.inputTokens, output_tokens: usage.outputTokens } };
});

async function toolLoop(name, stream) {
  const args = { model: anthropic('auto'), maxRetries: 0, tools: { run_command: runCommand }, stopWhen: stepCountIs(3),
                 prompt: ask(name, `Please run \`echo tierwise-${name}\` and tell me what it printed.`), maxOutputTokens: 300 };
  let steps; let text; let deltas = null;
  if (stream) {
    const r = streamText(args);
    deltas = 0;
    for await (const part of r.fullStream) if (part.type === 'tool-input-delta') deltas += 1;
    steps = await r.steps; text = await r.text;
  } else {
    const r = await generateText(args);
    steps = r.steps; text = r.text;
  }
  const call = steps[0].toolCalls[0];
  return { tool_name: call.toolName, tool_input: call.input, stop_reason: steps[0].finishReason === 'tool-calls' ? 'tool_calls' : steps[0].finishReason,
           json_deltas: deltas, final_text: text, steps: steps.length };
}
await cell('tools', () => toolLoop('tools', false));
await cell('stream_tools', () => toolLoop('stream_tools', true));

await cell('structured', async () => {
  const r = await generateText({ model: anthropic('auto'), maxRetries: 0, maxOutputTokens: 300,
    output: Output.object({ schema: z.object({ city: z.string(), population: z.number().int() }) }),
    prompt: ask('structured', 'Paris has 2.1 million people.') });
  return { object: r.output };
});

await cell('thinking', async () => {
  const r = await generateText({ model: anthropic('auto'), maxRetries: 0, maxOutputTokens: 2000,
    providerOptions: { anthropic: { thinking: { type: 'adaptive' } } },
    prompt: ask('thinking', 'Prove that there are infinitely many primes.') });
  return { reasoning: r.reasoningText ?? null, types: r.content.map((p) => (p.type === 'reasoning' ? 'thinking' : p.type)) };
});

await cell('errors', async () => {
  const out = {};
  for (const [key, model, headers] of [['bad_request', 'tierwise/no_such_task', {}], ['not_found', 'claude-imaginary-9', {}],
                                       ['overloaded', 'auto', { 'x-tierwise-fault': 'status=529' }]]) {
    try {
      await generateText({ model: anthropic(model), maxRetries: 0, prompt: ask('errors'), headers, maxOutputTokens: 10 });
      out[key] = { raised: null };
    } catch (err) {
      if (!APICallError.isInstance(err)) throw err;
      let body = null; try { body = JSON.parse(err.responseBody); } catch { /* not JSON */ }
      out[key] = { raised: err.constructor.name, status: err.statusCode, request_id: err.responseHeaders?.['request-id'] ?? null,
                   type: body?.error?.type ?? null, message: `${err.message} ${err.responseBody}` };
    }
  }
  return out;
});

done();
