// A real OAuth 2.0 authorization server for portcullis's device-flow tests: oidc-provider with
// the device authorization grant (RFC 8628) and refresh tokens. The user-facing steps are the
// library's own (/device: enter or confirm the user code); the login and consent interaction is
// completed automatically for the account "device-user", as a deployment's own login page would.
// Prints {"issuer": ...} on stdout once listening; stops when stdin closes.
import http from 'node:http';
import Provider from 'oidc-provider';

const accessTtl = Number(process.env.ACCESS_TOKEN_TTL || 120);
const server = http.createServer();
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  const issuer = `http://127.0.0.1:${port}`;
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: 'portcullis-test',
        grant_types: ['urn:ietf:params:oauth:grant-type:device_code', 'refresh_token'],
        response_types: [],
        redirect_uris: [],
        token_endpoint_auth_method: 'none',
        application_type: 'native',
      },
    ],
    features: {
      deviceFlow: { enabled: true },
      devInteractions: { enabled: false },
    },
    scopes: ['openid', 'offline_access', 'api'],
    issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
    ttl: { AccessToken: accessTtl, DeviceCode: 600, RefreshToken: 86400, Grant: 86400, Session: 86400, Interaction: 600 },
    interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
    findAccount: async (ctx, sub) => ({ accountId: sub, claims: async () => ({ sub }) }),
    cookies: { keys: ['portcullis-test-cookie-key-0123456789'] },
  });
  const callback = provider.callback();
  server.on('request', async (req, res) => {
    const m = req.url.match(/^\/interaction\/([^/?]+)/);
    if (!m) {
      callback(req, res);
      return;
    }
    try {
      const details = await provider.interactionDetails(req, res);
      if (details.prompt.name === 'login') {
        await provider.interactionFinished(req, res, { login: { accountId: 'device-user' } }, { mergeWithLastSubmission: false });
        return;
      }
      const grant = details.grantId
        ? await provider.Grant.find(details.grantId)
        : new provider.Grant({ accountId: details.session.accountId, clientId: details.params.client_id });
      const missing = details.prompt.details.missingOIDCScope;
      if (missing) grant.addOIDCScope(missing.join(' '));
      const missingRs = details.prompt.details.missingResourceScopes;
      if (missingRs) for (const [indicator, scopes] of Object.entries(missingRs)) grant.addResourceScope(indicator, scopes.join(' '));
      const grantId = await grant.save();
      await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
    } catch (e) {
      res.statusCode = 500;
      res.end(String(e));
    }
  });
  process.stdout.write(JSON.stringify({ issuer }) + '\n');
  // The library's notices (e.g. "customize the look of the success page") go to stderr: the
  // test may stop reading stdout after the first line.
  console.log = console.info = (...args) => process.stderr.write(args.join(' ') + '\n');
  process.stdout.on('error', () => {});
});
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
