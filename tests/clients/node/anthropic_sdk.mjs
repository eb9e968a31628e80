// The official @anthropic-ai/sdk against the proxy: every feature it offers.
import Anthropic from '@anthropic-ai/sdk';
import { URL, TASK, EXPLICIT, KEY, TOOL, RECORD, ask, runTool, cell, done } from './_cells.mjs';

const client = new Anthropic({ baseURL: URL, apiKey: KEY, maxRetries: 0, timeout: 30_000 });

const summary = (msg, response) => ({
  model: msg.model, stop_reason: msg.stop_reason, types: msg.content.map((b) => b.type),
  text: msg.content.find((b) => b.type === 'text')?.text ?? null,
  usage: { input_tokens: msg.usage.input_tokens, output_tokens: msg.usage.output_tokens },
  request_id: msg._request_id ?? null,
  headers: Object.fromEntries([...response.headers].filter(([k]) => k.startsWith('x-tierwise-'))),
});

for (const [name, model] of [['create_auto', 'auto'], ['create_task', TASK], ['create_explicit', EXPLICIT]]) {
  await cell(name, async () => {
    const { data, response } = await client.messages
      .create({ model, max_tokens: 200, messages: [{ role: 'user', content: ask(name) }] }).withResponse();
    return summary(data, response);
  });
}

await cell('stream', async () => {
  const s = client.messages.stream({ model: 'auto', max_tokens: 200, messages: [{ role: 'user', content: ask('stream') }] });
  const chunks = [];
  s.on('text', (t) => chunks.push(t));
  const final = await s.finalMessage();
  return { chunks: chunks.length, text: chunks.join(''), model: final.model,
           usage: { input_tokens: final.usage.input_tokens, output_tokens: final.usage.output_tokens } };
});

async function toolLoop(name, stream) {
  const messages = [{ role: 'user', content: ask(name, `Please run \`echo tierwise-${name}\` and tell me what it printed.`) }];
  let first; let deltas = null;
  if (stream) {
    const s = client.messages.stream({ model: 'auto', max_tokens: 300, tools: [TOOL], messages });
    deltas = 0;
    s.on('inputJson', () => { deltas += 1; });
    first = await s.finalMessage();
  } else {
    first = await client.messages.create({ model: 'auto', max_tokens: 300, tools: [TOOL], messages });
  }
  const use = first.content.find((b) => b.type === 'tool_use');
  messages.push({ role: 'assistant', content: first.content },
                { role: 'user', content: [{ type: 'tool_result', tool_use_id: use.id, content: runTool(use.input.command) }] });
  const final = await client.messages.create({ model: 'auto', max_tokens: 300, tools: [TOOL], messages });
  return { stop_reason: first.stop_reason, tool_name: use.name, tool_input: use.input, json_deltas: deltas,
           final_stop_reason: final.stop_reason, final_text: final.content[0].text, model: final.model };
}
await cell('tools', () => toolLoop('tools', false));
await cell('stream_tools', () => toolLoop('stream_tools', true));

await cell('structured', async () => {
  const msg = await client.messages.create({ model: 'auto', max_tokens: 200, tools: [RECORD],
    tool_choice: { type: 'tool', name: 'record_city' },
    messages: [{ role: 'user', content: ask('structured', 'Paris has 2.1 million people.') }] });
  const use = msg.content.find((b) => b.type === 'tool_use');
  return { object: use.input, tool_name: use.name, model: msg.model, stop_reason: msg.stop_reason };
});

await cell('thinking', async () => {
  const msg = await client.messages.create({ model: 'auto', max_tokens: 2000, thinking: { type: 'adaptive' },
    messages: [{ role: 'user', content: ask('thinking', 'Prove that there are infinitely many primes.') }] });
  return { types: msg.content.map((b) => b.type), model: msg.model,
           signature: Boolean(msg.content.find((b) => b.type === 'thinking')?.signature) };
});

await cell('count_tokens', async () => {
  const n = await client.messages.countTokens({ model: 'auto', messages: [{ role: 'user', content: ask('count_tokens', 'hello '.repeat(50)) }] });
  const m = await client.messages.countTokens({ model: EXPLICIT, messages: [{ role: 'user', content: ask('count_tokens', 'hi') }] });
  return { input_tokens: n.input_tokens, small: m.input_tokens };
});

await cell('models', async () => {
  const ids = [];
  for await (const m of client.models.list()) ids.push(m.id);
  const got = await client.models.retrieve(EXPLICIT);
  return { ids, retrieved: got.id, display_name: got.display_name };
});

await cell('batches', async () => {
  let batch = await client.messages.batches.create({ requests: ['auto', EXPLICIT].map((model, i) => ({
    custom_id: `r${i}`, params: { model, max_tokens: 100, messages: [{ role: 'user', content: ask('batches', `item ${i}`) }] } })) });
  const deadline = Date.now() + 20_000;
  while (batch.processing_status !== 'ended' && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 200));
    batch = await client.messages.batches.retrieve(batch.id);
  }
  const results = {};
  for await (const r of await client.messages.batches.results(batch.id)) {
    results[r.custom_id] = [r.result.type, r.result.message?.model ?? null];
  }
  let listed = false;
  for await (const b of client.messages.batches.list()) if (b.id === batch.id) listed = true;
  return { id: batch.id, status: batch.processing_status, results, listed };
});

await cell('errors', async () => {
  const out = {};
  for (const [key, model, headers] of [['bad_request', 'tierwise/no_such_task', {}], ['not_found', 'claude-imaginary-9', {}],
                                       ['overloaded', 'auto', { 'x-tierwise-fault': 'status=529' }]]) {
    try {
      await client.messages.create({ model, max_tokens: 10, messages: [{ role: 'user', content: ask('errors') }] }, { headers });
      out[key] = { raised: null };
    } catch (err) {
      if (!(err instanceof Anthropic.APIError)) throw err;
      out[key] = { raised: err.constructor.name, status: err.status, request_id: err.requestID ?? null,
                   type: err.error?.error?.type ?? null, message: err.message };
    }
  }
  return out;
});

done();
