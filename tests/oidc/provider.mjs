// The OpenID provider icsflow's tests sign in against: panva's oidc-provider (an OpenID
// Certified implementation of OpenID Connect), on loopback, configured from a JSON file:
//
//   node provider.mjs CONFIG.json
//   {"issuer": "http://127.0.0.1:PORT", "port": PORT,
//    "clients": [{"client_id", "client_secret", "redirect_uris", "post_logout_redirect_uris"}],
//    "accounts": {"alice": {"password": "...", "claims": {"preferred_username": "alice",
//                                                        "roles": ["icsflow-iro"], ...}}}}
//
// Only the login page is ours (the provider leaves interactions to its host): it checks the
// account's password and tells the provider who signed in. Consent is granted for the
// requested scopes, as a council's provider does for an application its administrators
// registered. Everything else (discovery, PKCE, codes, tokens, signatures, userinfo,
// end_session) is the provider's own. Prints "ready ISSUER" when it listens.

import { createServer } from 'node:http';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Provider } from 'oidc-provider';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const accounts = config.accounts;

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = {
  ...privateKey.export({ format: 'jwk' }), kid: `test-${Date.now()}`, use: 'sig', alg: 'RS256',
};

const provider = new Provider(config.issuer, {
  clients: config.clients,
  jwks: { keys: [signingKey] },
  cookies: { keys: [randomBytes(32).toString('hex')] },
  claims: {
    openid: ['sub'],
    profile: ['preferred_username', 'name', 'roles', 'team', 'service'],
    email: ['email', 'email_verified'],
  },
  features: { devInteractions: { enabled: false }, rpInitiatedLogout: { enabled: true } },
  pkce: { required: () => true },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  async findAccount(ctx, id) {
    if (!Object.hasOwn(accounts, id)) return undefined;
    return { accountId: id, claims: async () => ({ sub: id, ...accounts[id].claims }) };
  },
  async loadExistingGrant(ctx) {
    const grantId = ctx.oidc.result?.consent?.grantId
      || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) return ctx.oidc.provider.Grant.find(grantId);
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope(ctx.oidc.params.scope);
    await grant.save();
    return grant;
  },
});

const escape = (text) => String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function loginPage(uid, error, login) {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Council sign-in</title>
</head><body><h1>Council sign-in</h1>${error ? `<p id="error">${escape(error)}</p>` : ''}
<form method="post" action="/interaction/${escape(uid)}/login">
<label for="login">Account</label><input id="login" name="login" value="${escape(login || '')}">
<label for="password">Password</label><input id="password" name="password" type="password">
<button type="submit">Continue</button></form></body></html>`;
}

async function body(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

async function interaction(req, res, uid, action) {
  const details = await provider.interactionDetails(req, res);
  if (details.prompt.name !== 'login') {
    res.writeHead(400, { 'content-type': 'text/plain' }).end(`unexpected prompt ${details.prompt.name}`);
    return;
  }
  if (action !== 'login') {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(loginPage(uid));
    return;
  }
  const form = await body(req);
  const login = form.get('login') || '';
  const account = Object.hasOwn(accounts, login) ? accounts[login] : undefined;
  if (!account || account.password !== form.get('password')) {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' })
      .end(loginPage(uid, 'Wrong account or password.', login));
    return;
  }
  await provider.interactionFinished(req, res, { login: { accountId: login } },
    { mergeWithLastSubmission: false });
}

const handler = provider.callback();
const server = createServer((req, res) => {
  const match = /^\/interaction\/([\w-]+)(?:\/(login))?$/.exec(req.url.split('?')[0]);
  if (!match) {
    handler(req, res);
    return;
  }
  interaction(req, res, match[1], req.method === 'POST' ? match[2] : undefined).catch((err) => {
    res.writeHead(400, { 'content-type': 'text/plain' }).end(String(err.message || err));
  });
});
server.listen(config.port, '127.0.0.1', () => console.log(`ready ${config.issuer}`));
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => server.close(() => process.exit(0)));
