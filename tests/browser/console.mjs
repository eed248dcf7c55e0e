// The admin console in a real browser (tests/browser/run): a `portcullis serve` on a free port
// with a temporary store and configuration, a local admin and an agent token made by the CLI;
// then chromium (playwright-core, the system's browser) signs in, sees a form without the
// anti-forgery field and a form posted from another origin's page refused, revokes a device,
// adds an upstream credential, charts traffic on the activity page (its colours read back from
// a screenshot), signs out, and takes screenshots. Fails on any assertion, on a console error or a
// CSP violation in the page, and on a screenshot too small to show the page.

import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, statSync, writeFileSync, mkdirSync } from "node:fs";
import { createServer } from "node:net";
import { createServer as createHttpServer } from "node:http";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import assert from "node:assert/strict";
import { chromium } from "playwright-core";

const BIN = process.env.PORTCULLIS_BIN;
const BROWSER = process.env.CHROMIUM;
const OUT = resolve(process.env.OUT_DIR ?? "tests/browser/out");
const PASSWORD = "browser-test-password-0123";
const SECRET = "sk-browser-added-0123456789abcdef";

function freePort() {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.on("error", fail);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
  });
}

/// Runs the CLI with the temporary configuration; its output.
function cli(config, args, input) {
  const r = spawnSync(BIN, [...args, "--config", config], { input, encoding: "utf8" });
  assert.equal(r.status, 0, `portcullis ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
}

async function waitHealthy(url, server) {
  for (let i = 0; i < 100; i++) {
    if (server.exitCode !== null) throw new Error(`portcullis serve exited (${server.exitCode})`);
    try {
      if ((await fetch(`${url}/health`)).ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error("portcullis serve did not become healthy in 10 s");
}

/// The size of a screenshot of an empty page of the same size: a page that rendered is well above.
let blankBytes = 0;

async function screenshot(page, name) {
  const path = join(OUT, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  const { size } = statSync(path);
  assert.ok(size >= 2 * blankBytes, `${path} is ${size} bytes (an empty page ${blankBytes}): the page did not render`);
  console.log(`screenshot ${path} (${size} bytes; an empty page ${blankBytes})`);
}

const dir = mkdtempSync(join(tmpdir(), "portcullis-browser-"));
mkdirSync(OUT, { recursive: true });
let server;
let mock;
let browser;
try {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  // The mock upstream, so the activity page has traffic to chart.
  const mockPort = await freePort();
  mock = spawn(join(resolve(BIN, ".."), "portcullis-mock"), ["--port", String(mockPort)], {
    stdio: ["ignore", "ignore", "inherit"],
  });
  const config = join(dir, "portcullis.yaml");
  writeFileSync(
    config,
    [
      "server: {host: 127.0.0.1, port: " + port + "}",
      `storage: {data_dir: ${JSON.stringify(join(dir, "data"))}}`,
      "auth: {api_keys: [{name: tester, key: browser-test-client-key-0123}]}",
      "backends:",
      "  openai: {type: openai, base_url: 'http://127.0.0.1:" + mockPort + "/v1', api_key: sk-configured-upstream-0123456789}",
      "admin: {console: {enabled: true, admins: [alice]}}",
      "",
    ].join("\n"),
  );
  cli(config, ["users", "add", "alice", "--email", "alice@example.com", "--name", "Alice Admin", "--password-stdin"], PASSWORD + "\n");
  cli(config, ["tokens", "issue", "--user", "carol@example.com", "--name", "carol's <laptop>"]);
  cli(config, ["tokens", "issue", "--user", "dave@example.com", "--name", "dave-phone"]);

  server = spawn(BIN, ["serve", "--config", config], { stdio: ["ignore", "ignore", "inherit"] });
  await waitHealthy(url, server);

  browser = await chromium.launch({
    executablePath: BROWSER,
    args: ["--no-sandbox", "--disable-background-networking", "--disable-component-update", "--no-first-run"],
  });
  const page = await browser.newPage({ viewport: { width: 1400, height: 800 } });
  const problems = [];
  // The refusals the test causes on purpose: the wrong password, the cross-site form.
  const expected = [
    [401, "/admin/login"],
    [403, "/admin/devices/revoke"],
  ];
  page.on("console", (m) => {
    const onPurpose = expected.some(
      ([status, path]) => m.text().includes(`status of ${status}`) && m.location().url.endsWith(path),
    );
    if (m.type() === "error" && !onPurpose) problems.push(`${m.location().url}: ${m.text()}`);
  });
  page.on("pageerror", (e) => problems.push(String(e)));
  await page.setContent("<html><body></body></html>");
  blankBytes = (await page.screenshot({ fullPage: true })).length;

  // Sign in: a wrong password first, then the right one.
  await page.goto(`${url}/admin`);
  assert.match(page.url(), /\/admin\/login$/);
  await screenshot(page, "sign-in");
  await page.fill("input[name=username]", "alice");
  await page.fill("input[name=password]", "not the password");
  await page.click("button[type=submit]");
  assert.match(await page.textContent("main"), /Wrong username or password/);
  await page.fill("input[name=username]", "alice");
  await page.fill("input[name=password]", PASSWORD);
  await page.click("button[type=submit]");
  assert.match(page.url(), /\/admin\/devices$/);
  assert.match(await page.textContent("header"), /Alice Admin/);

  // Forged forms against dave's device: without the anti-forgery field (the session's cookie
  // sent), and from another origin's page (the field included: the origin alone refuses it).
  const dave = page.locator("tbody tr", { hasText: "dave@example.com" });
  const daveId = (await dave.locator("code").textContent()).trim();
  const csrf = await page.getAttribute("form.who input[name=csrf]", "value");
  const forged = await page.request.post(`${url}/admin/devices/revoke`, { form: { id: daveId } });
  assert.equal(forged.status(), 403, "a form without the anti-forgery field");
  const attacker = createHttpServer((_, res) => {
    res.setHeader("content-type", "text/html");
    res.end(
      `<form method="post" action="${url}/admin/devices/revoke">` +
        `<input name="csrf" value="${csrf}"><input name="id" value="${daveId}"></form>` +
        "<script>document.forms[0].submit()</script>",
    );
  });
  await new Promise((ok) => attacker.listen(0, "127.0.0.1", ok));
  try {
    const response = page.waitForResponse(`${url}/admin/devices/revoke`);
    await page.goto(`http://127.0.0.1:${attacker.address().port}/`);
    assert.equal((await response).status(), 403, "a form posted from another origin");
    await page.waitForLoadState();
    assert.match(await page.textContent("main"), /sent from another site/);
  } finally {
    attacker.close();
  }
  assert.match(cli(config, ["tokens", "list", "--json"]), /"dave-phone"[^\n]*"status":"active"/);
  await page.goto(`${url}/admin/devices`);

  // Revoke the device (its name is shown as text, not markup).
  const row = page.locator("tbody tr", { has: page.locator("input[value=\"carol's <laptop>\"]") });
  assert.equal(await row.count(), 1, "the issued device is listed");
  assert.match(await row.textContent(), /active/);
  await row.locator("button", { hasText: "Revoke" }).click();
  assert.match(await page.textContent(".notice"), /Device revoked/);
  assert.match(await row.textContent(), /revoked/);
  const tokens = cli(config, ["tokens", "list", "--json"]);
  assert.match(tokens, /"carol's <laptop>"[^\n]*"status":"revoked"/, tokens);
  assert.match(tokens, /"dave-phone"[^\n]*"status":"active"/, tokens);
  await screenshot(page, "devices");

  // Add an upstream credential.
  await page.click("nav a[href='/admin/credentials']");
  await page.selectOption("select[name=provider]", "openai");
  await page.fill("input[name=token]", SECRET);
  await page.fill("input[name=label]", "team key");
  await page.fill("input[name=priority]", "5");
  await page.fill("input[name=quota]", "1000000");
  await page.click("form.grid button[type=submit]");
  assert.match(await page.textContent(".notice"), /Credential added/);
  const added = page.locator("tbody tr", { hasText: "team key" });
  assert.equal(await added.count(), 1, "the new credential is listed");
  assert.match(await added.textContent(), /0 \/ 1000000/);
  const html = await page.content();
  assert.ok(!html.includes(SECRET), "the secret is never on the page");
  assert.ok(!html.includes("sk-configured-upstream-0123456789"), "nor the configured one");
  await screenshot(page, "credentials");

  // Traffic, then the activity page: three charts with a line each, drawn in colour.
  for (const model of ["gpt-4o-mini", "gpt-4o-mini", "gpt-4o-mini", "o3"]) {
    const r = await fetch(`${url}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: "Bearer browser-test-client-key-0123", "content-type": "application/json" },
      body: JSON.stringify({ model, messages: [{ role: "user", content: "hi" }] }),
    });
    assert.equal(r.status, 200, await r.text());
  }
  await page.click("nav a[href='/admin/activity']");
  assert.equal(await page.locator("figure.chart").count(), 3);
  assert.equal(await page.locator("figure.chart polyline").count(), 6, "two models in each chart");
  assert.match(await page.textContent("main table"), /gpt-4o-mini\s*3/);
  const chart = await page.locator("figure.chart > svg").first().screenshot();
  // The series' colours are in the picture (read back through a canvas in the page).
  const coloured = await page.evaluate(async (b64) => {
    const img = new Image();
    img.src = `data:image/png;base64,${b64}`;
    await img.decode();
    const c = document.createElement("canvas");
    c.width = img.width;
    c.height = img.height;
    const g = c.getContext("2d");
    g.drawImage(img, 0, 0);
    const d = g.getImageData(0, 0, c.width, c.height).data;
    const near = (r, gr, b) => {
      let n = 0;
      for (let i = 0; i < d.length; i += 4) {
        if (Math.abs(d[i] - r) < 40 && Math.abs(d[i + 1] - gr) < 40 && Math.abs(d[i + 2] - b) < 40) n++;
      }
      return n;
    };
    return { blue: near(0x1f, 0x77, 0xb4), orange: near(0xe8, 0x71, 0x0a) };
  }, chart.toString("base64"));
  // (Both lines run along zero for most of a fresh hour, the later one drawn over the other.)
  assert.ok(coloured.blue > 20 && coloured.orange > 20, `series colours drawn: ${JSON.stringify(coloured)}`);
  await screenshot(page, "activity");

  // Sign out.
  await page.click("header button[type=submit]");
  assert.match(page.url(), /\/admin\/login$/);
  await page.goto(`${url}/admin/devices`);
  assert.match(page.url(), /\/admin\/login$/, "signed out");

  assert.deepEqual(problems, [], "no console errors or CSP violations");
  console.log("browser test of the admin console: ok");
} finally {
  await browser?.close();
  // The gateway's shutdown flush writes to its data directory: removed once it has exited.
  await Promise.all([stopped(server), stopped(mock)]);
  rmSync(dir, { recursive: true, force: true });
}

/** Ends `child` (SIGTERM) and resolves once it has exited. */
function stopped(child) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill();
  return exited;
}
