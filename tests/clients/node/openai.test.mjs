// The official `openai` Node SDK through the gateway: chat (streamed with usage), Responses
// (streamed), embeddings, models, models of Anthropic and Gemini backends (translated, a tool
// round trip included), and the errors a client must be able to read.

import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { MOCK_TEXT, callTool, client, installedVersion, useGateway } from './harness.mjs';

const gateway = useGateway();
const { op } = client({
  name: 'openai (Node)',
  package: 'npm `openai`',
  version: installedVersion('openai'),
  base_url: '`http://127.0.0.1:8080/v1`',
  key: '`apiKey` or `OPENAI_API_KEY` (Bearer)',
  setup: '`new OpenAI({ baseURL, apiKey })`; also what Cursor, Continue and Cline-style tools build on',
});

const oai = () => new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey: gateway.key, maxRetries: 0 });
const messages = [{ role: 'user', content: 'Hello' }];

op('chat.completions create', async () => {
  const r = await oai().chat.completions.create({ model: 'gpt-4o', messages });
  assert.equal(r.choices[0].message.content, MOCK_TEXT);
  assert.ok(r.usage.total_tokens > 0);
});

op('chat stream (`stream_options.include_usage`), `.stream()` helper', async () => {
  const stream = await oai().chat.completions.create({
    model: 'gpt-4o',
    messages,
    stream: true,
    stream_options: { include_usage: true },
  });
  let text = '';
  let usage = null;
  for await (const chunk of stream) {
    text += chunk.choices[0]?.delta?.content ?? '';
    if (chunk.usage) usage = chunk.usage;
  }
  assert.equal(text, MOCK_TEXT);
  assert.ok(usage && usage.total_tokens > 0, 'the usage chunk arrives');
  const helper = oai().chat.completions.stream({ model: 'gpt-4o', messages });
  const final = await helper.finalChatCompletion();
  assert.equal(final.choices[0].message.content, MOCK_TEXT);
});

op('responses create, stream, `.stream()` helper', async () => {
  const c = oai();
  const r = await c.responses.create({ model: 'gpt-4o', input: 'Hello' });
  assert.equal(r.output_text, MOCK_TEXT);
  const events = [];
  for await (const e of await c.responses.create({ model: 'gpt-4o', input: 'Hello', stream: true })) events.push(e);
  const deltas = events.filter((e) => e.type === 'response.output_text.delta').map((e) => e.delta);
  assert.equal(deltas.join(''), MOCK_TEXT);
  assert.equal(events.at(-1).type, 'response.completed');
  assert.ok(events.at(-1).response.usage.total_tokens > 0);
  const final = await c.responses.stream({ model: 'gpt-4o', input: 'Hello' }).finalResponse();
  assert.equal(final.output_text, MOCK_TEXT);
});

op('embeddings (SDK default base64, and float)', async () => {
  const c = oai();
  const e = await c.embeddings.create({ model: 'text-embedding-3-small', input: ['a', 'b'] });
  assert.equal(e.data.length, 2);
  assert.ok(e.data[0].embedding.length > 0 && e.data[0].embedding.every(Number.isFinite));
  const f = await c.embeddings.create({ model: 'text-embedding-3-small', input: 'a', encoding_format: 'float' });
  assert.deepEqual(f.data[0].embedding.length, e.data[0].embedding.length);
});

op('models list / retrieve', async () => {
  const c = oai();
  const ids = [];
  for await (const m of c.models.list()) ids.push(m.id);
  assert.ok(ids.length > 0);
  assert.equal((await c.models.retrieve(ids[0])).id, ids[0]);
});

const CROSSED = ['anthropic:mock-claude', 'gemini:mock-gemini'];
const WEATHER = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'The weather in a city',
    parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
  },
};

op('crossed route: chat (+stream) on Anthropic and Gemini backends (translated)', async () => {
  for (const model of CROSSED) {
    const r = await oai().chat.completions.create({ model, messages });
    assert.equal(r.choices[0].message.content, MOCK_TEXT, model);
    assert.equal(r.choices[0].finish_reason, 'stop', model);
    assert.ok(r.usage.total_tokens > 0, model);
    const final = await oai().chat.completions.stream({ model, messages }).finalChatCompletion();
    assert.equal(final.choices[0].message.content, MOCK_TEXT, model);
  }
});

op('crossed route: chat tool round trip (+stream) on Anthropic and Gemini backends (translated)', async () => {
  const headers = callTool('get_weather', { city: 'Paris' });
  for (const model of CROSSED) {
    for (const streamed of [false, true]) {
      const ask = { model, messages, tools: [WEATHER] };
      const first = streamed
        ? await oai().chat.completions.stream(ask, { headers }).finalChatCompletion()
        : await oai().chat.completions.create(ask, { headers });
      const { message, finish_reason } = first.choices[0];
      assert.equal(finish_reason, 'tool_calls', model);
      const [call] = message.tool_calls;
      assert.deepEqual([call.function.name, JSON.parse(call.function.arguments)], ['get_weather', { city: 'Paris' }]);
      const answer = [...messages, message, { role: 'tool', tool_call_id: call.id, content: 'Sunny, 21 C' }];
      const final = await oai().chat.completions.create({ ...ask, messages: answer }, { headers });
      assert.equal(final.choices[0].message.content, 'Tool result received: Sunny, 21 C', model);
    }
  }
});

op('crossed route: responses stream on an Anthropic backend (translated)', async () => {
  const events = [];
  const stream = await oai().responses.create({ model: 'anthropic:mock-claude', input: 'Hello', stream: true });
  for await (const e of stream) events.push(e);
  const deltas = events.filter((e) => e.type === 'response.output_text.delta').map((e) => e.delta);
  assert.equal(deltas.join(''), MOCK_TEXT);
  assert.equal(events.at(-1).type, 'response.completed');
  const [message] = events.at(-1).response.output.filter((o) => o.type === 'message');
  assert.equal(message.content[0].text, MOCK_TEXT);
  assert.ok(events.at(-1).response.usage.total_tokens > 0);
});

op('errors: wrong key', async () => {
  const wrong = new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey: 'wrong-key-0123456789', maxRetries: 0 });
  await assert.rejects(wrong.chat.completions.create({ model: 'gpt-4o', messages }), OpenAI.AuthenticationError);
});

op('Responses stream broken midway: the gateway says so', async () => {
  const headers = { 'x-mock': 'chunks=6; drop_after=2' };
  const stream = await oai().responses.create({ model: 'gpt-4o', input: 'Hello', stream: true }, { headers });
  // The gateway ends it with a typed `response.failed` event; an SDK that raises instead is as good.
  let failure = null;
  try {
    for await (const e of stream) {
      if (e.type === 'response.failed') failure = e.response.error.message;
      if (e.type === 'error') failure = e.message;
    }
  } catch (e) {
    failure = e.message;
  }
  assert.match(failure ?? 'the stream ended as if complete', /broke off/);
});
