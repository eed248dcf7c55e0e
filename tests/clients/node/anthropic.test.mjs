// The official `@anthropic-ai/sdk` Node SDK through the gateway: messages (streamed raw and
// through the helper), count_tokens, models, a model of an OpenAI backend (translated, a tool
// round trip included), and the errors a client must be able to read.

import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';
import { MOCK_TEXT, callTool, client, installedVersion, useGateway } from './harness.mjs';

const gateway = useGateway();
const { op } = client({
  name: '@anthropic-ai/sdk (Node)',
  package: 'npm `@anthropic-ai/sdk`',
  version: installedVersion('@anthropic-ai/sdk'),
  base_url: '`http://127.0.0.1:8080` (no `/v1`)',
  key: '`apiKey` / `ANTHROPIC_API_KEY` (x-api-key), or `authToken` (Bearer)',
  setup: '`new Anthropic({ baseURL, apiKey })`',
});

const ant = (auth = { apiKey: gateway.key }) => new Anthropic({ baseURL: gateway.url, maxRetries: 0, ...auth });
const request = { model: 'claude-sonnet-4-5', max_tokens: 64, messages: [{ role: 'user', content: 'Hello' }] };

op('messages create (x-api-key and Bearer)', async () => {
  const r = await ant().messages.create(request);
  assert.equal(r.content[0].text, MOCK_TEXT);
  assert.ok(r.usage.output_tokens > 0);
  const bearer = await ant({ apiKey: null, authToken: gateway.key }).messages.create(request);
  assert.equal(bearer.content[0].text, MOCK_TEXT);
});

op('messages stream (raw events, `.stream()` + finalMessage)', async () => {
  const types = [];
  let text = '';
  for await (const e of await ant().messages.create({ ...request, stream: true })) {
    types.push(e.type);
    if (e.type === 'content_block_delta') text += e.delta.text;
  }
  assert.equal(text, MOCK_TEXT);
  assert.equal(types[0], 'message_start');
  assert.equal(types.at(-1), 'message_stop');
  const stream = ant().messages.stream(request);
  const final = await stream.finalMessage();
  assert.equal(final.content[0].text, MOCK_TEXT);
  assert.equal(final.stop_reason, 'end_turn');
  assert.ok(final.usage.output_tokens > 0);
});

op('messages.countTokens', async () => {
  const { max_tokens: _, ...count } = request;
  const r = await ant().messages.countTokens(count);
  assert.ok(r.input_tokens > 0);
});

op('models list', async () => {
  const ids = [];
  for await (const m of ant().models.list()) ids.push(m.id);
  assert.ok(ids.length > 0);
});

const WEATHER = {
  name: 'get_weather',
  description: 'The weather in a city',
  input_schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
};

op('crossed route: messages create, `.stream()` on an OpenAI backend (translated)', async () => {
  const crossed = { ...request, model: 'openai:mock-gpt' };
  const r = await ant().messages.create(crossed);
  assert.equal(r.content[0].text, MOCK_TEXT);
  assert.equal(r.stop_reason, 'end_turn');
  assert.ok(r.usage.output_tokens > 0);
  const final = await ant().messages.stream(crossed).finalMessage();
  assert.equal(final.content[0].text, MOCK_TEXT);
  assert.equal(final.stop_reason, 'end_turn');
});

op('crossed route: tool round trip (+stream) on an OpenAI backend (translated)', async () => {
  const headers = callTool('get_weather', { city: 'Paris' });
  const ask = { ...request, model: 'openai:mock-gpt', tools: [WEATHER] };
  for (const streamed of [false, true]) {
    const first = streamed
      ? await ant().messages.stream(ask, { headers }).finalMessage()
      : await ant().messages.create(ask, { headers });
    assert.equal(first.stop_reason, 'tool_use');
    const call = first.content.find((b) => b.type === 'tool_use');
    assert.deepEqual([call.name, call.input], ['get_weather', { city: 'Paris' }]);
    const messages = [
      ...ask.messages,
      { role: 'assistant', content: first.content },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: call.id, content: 'Sunny, 21 C' }] },
    ];
    const final = await ant().messages.create({ ...ask, messages }, { headers });
    assert.equal(final.stop_reason, 'end_turn');
    assert.equal(final.content[0].text, 'Tool result received: Sunny, 21 C');
  }
});

op('errors: wrong key, stream broken midway', async () => {
  await assert.rejects(ant({ apiKey: 'wrong-key-0123456789' }).messages.create(request), Anthropic.AuthenticationError);
  const headers = { 'x-mock': 'chunks=6; drop_after=2' };
  await assert.rejects(ant().messages.stream(request, { headers }).finalMessage(), /broke off/);
});
