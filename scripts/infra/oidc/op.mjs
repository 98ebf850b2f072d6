// Test OpenID Connect provider (oidc-provider, in-memory store, development signing keys).
// Started by scripts/test-infra; listens on loopback only. Never use it outside tests.
//
// Environment:
//   OIDC_HOST           listen address and issuer host (default 127.0.0.1)
//   OIDC_PORT           port (default 4010); the issuer is http://OIDC_HOST:OIDC_PORT
//   OIDC_CLIENT_ID      default test-client
//   OIDC_CLIENT_SECRET  default test-secret (client_secret_basic or client_secret_post)
//   OIDC_REDIRECT_URIS  comma-separated redirect URIs (default http://127.0.0.1:9999/callback and
//                       http://127.0.0.1:9999/oauth2/authorize, WTS's callback, so that the
//                       login flow of `tessera dev` works against this provider).
//                       oidc-provider matches redirect URIs exactly, except that the client is a
//                       "native" one (RFC 8252 section 7.3): for http://127.0.0.1 and
//                       http://localhost URIs the PORT is ignored. So a service under test on a
//                       random port can use http://127.0.0.1:<any port>/callback as long as
//                       the path /callback is registered; other paths must be listed here.
//   OIDC_USERS          JSON {"login": {"password": "...", "email": "...", "name": "..."}}
//                       (default alice/alice-pw and bob/bob-pw)
//
// Grants: authorization_code (login form at /interaction/<uid>, fields login and password,
// consent is automatic), refresh_token, client_credentials, and password (ROPC, which
// oidc-provider lacks: registered below so tests get tokens without a browser).
// Endpoints besides the defaults: userinfo, revocation, introspection.
//
// For the Workspace Token Service tests this provider also has:
//   - JWT access tokens for the resource OIDC_JWT_RESOURCE (default urn:gen3), requested with
//     the `resource` parameter (authorization request, token request or the password grant):
//     RS256, `aud` OIDC_JWT_AUDIENCE (default gen3), scope `openid user data`, and the Gen3
//     claims `pur: "access"` and `context.user.name` (= the account id). Tokens without a
//     resource stay opaque, so userinfo keeps working with them.
//   - refresh-token rotation on every use when OIDC_ROTATE_REFRESH_TOKENS=1 (off by default).
//
// For the OGDC runner tests (Keycloak-shaped access tokens, as dataone-auth checks them):
//   - JWT access tokens for the resource OIDC_OGDC_RESOURCE (default urn:ogdc): RS256, `aud`
//     the client id (Keycloak's audience mapper), `azp` the client id, and the scopes of
//     `openid email profile ogdc:admin` that were asked for (`ogdc:admin` only when requested).
//   - a second client, OIDC_OGDC_CLIENT_ID (default ogdc-client) with OIDC_OGDC_CLIENT_SECRET
//     (default ogdc-secret) and OIDC_OGDC_REDIRECT_URIS (default
//     http://127.0.0.1:9999/authorize, the runner's callback, any loopback port), whose
//     requests without `resource` get that resource: v0.4 clients send none, and Keycloak
//     always issues JWT access tokens. So its logins (authorization code), refresh grants
//     (the refresh token keeps the resource) and password grants give urn:ogdc JWTs, while
//     the first client keeps opaque tokens without `resource` (WTS's userinfo calls need them).
import Provider, { errors } from 'oidc-provider';

const HOST = process.env.OIDC_HOST || '127.0.0.1';
const PORT = Number(process.env.OIDC_PORT || process.env.PORT || 4010);
const ISSUER = `http://${HOST}:${PORT}`;
const REDIRECT_URIS = (
  process.env.OIDC_REDIRECT_URIS || 'http://127.0.0.1:9999/callback,http://127.0.0.1:9999/oauth2/authorize'
)
  .split(',')
  .map((uri) => uri.trim())
  .filter(Boolean);
const USERS = process.env.OIDC_USERS
  ? JSON.parse(process.env.OIDC_USERS)
  : {
      alice: { password: 'alice-pw', email: 'alice@example.test', name: 'Alice' },
      bob: { password: 'bob-pw', email: 'bob@example.test', name: 'Bob' },
    };

const JWT_RESOURCE = process.env.OIDC_JWT_RESOURCE || 'urn:gen3';
const JWT_AUDIENCE = process.env.OIDC_JWT_AUDIENCE || 'gen3';
const JWT_SCOPE = 'openid user data';
const OGDC_RESOURCE = process.env.OIDC_OGDC_RESOURCE || 'urn:ogdc';
const OGDC_SCOPE = 'openid email profile ogdc:admin';
const ROTATE = (process.env.OIDC_ROTATE_REFRESH_TOKENS || '0') === '1';
const OGDC_CLIENT_ID = process.env.OIDC_OGDC_CLIENT_ID || 'ogdc-client';
const OGDC_REDIRECT_URIS = (process.env.OIDC_OGDC_REDIRECT_URIS || 'http://127.0.0.1:9999/authorize')
  .split(',')
  .map((uri) => uri.trim())
  .filter(Boolean);
// The resource a request of `client` without `resource` is for.
const defaultResourceOf = (client) => (client.clientId === OGDC_CLIENT_ID ? OGDC_RESOURCE : undefined);

async function findAccount(ctx, sub) {
  const user = Object.hasOwn(USERS, sub) ? USERS[sub] : undefined;
  if (!user) return undefined;
  return {
    accountId: sub,
    async claims() {
      return { sub, email: user.email, name: user.name };
    },
  };
}

const configuration = {
  clients: [
    {
      client_id: process.env.OIDC_CLIENT_ID || 'test-client',
      client_secret: process.env.OIDC_CLIENT_SECRET || 'test-secret',
      application_type: 'native',
      redirect_uris: REDIRECT_URIS,
      post_logout_redirect_uris: REDIRECT_URIS,
      grant_types: ['authorization_code', 'refresh_token', 'password', 'client_credentials'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    },
    {
      client_id: OGDC_CLIENT_ID,
      client_secret: process.env.OIDC_OGDC_CLIENT_SECRET || 'ogdc-secret',
      application_type: 'native',
      redirect_uris: OGDC_REDIRECT_URIS,
      post_logout_redirect_uris: OGDC_REDIRECT_URIS,
      grant_types: ['authorization_code', 'refresh_token', 'password'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    },
  ],
  // Fixed keys: cookies stay valid across restarts and no warning is printed.
  cookies: { keys: ['tessera-test-cookie-key'] },
  pkce: { required: () => false },
  features: {
    devInteractions: { enabled: true },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    revocation: { enabled: true },
    userinfo: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: async (ctx, client, oneOf) => (oneOf ? oneOf[0] : defaultResourceOf(client)),
      useGrantedResource: async () => true,
      getResourceServerInfo: async (ctx, resource, client) => {
        if (resource === OGDC_RESOURCE) {
          return {
            audience: client.clientId,
            scope: OGDC_SCOPE,
            accessTokenFormat: 'jwt',
            accessTokenTTL: 600,
            jwt: { sign: { alg: 'RS256' } },
          };
        }
        if (resource !== JWT_RESOURCE) throw new errors.InvalidTarget();
        return {
          audience: JWT_AUDIENCE,
          scope: JWT_SCOPE,
          accessTokenFormat: 'jwt',
          accessTokenTTL: 600,
          jwt: { sign: { alg: 'RS256' } },
        };
      },
    },
  },
  extraTokenClaims: async (ctx, token) => {
    if (token.kind !== 'AccessToken' || !token.resourceServer) return undefined;
    if (token.resourceServer.identifier() === OGDC_RESOURCE) return { azp: token.clientId };
    return { pur: 'access', context: { user: { name: token.accountId } } };
  },
  rotateRefreshToken: () => ROTATE,
  claims: { openid: ['sub'], email: ['email'], profile: ['name'] },
  scopes: ['openid', 'offline_access', 'email', 'profile', 'ogdc:admin'],
  findAccount,
  issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
  // Automatic consent: tests drive the login form only.
  loadExistingGrant: async (ctx) => {
    const grantId =
      ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) return ctx.oidc.provider.Grant.find(grantId);
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId,
      accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope('openid email profile offline_access');
    grant.addResourceScope(JWT_RESOURCE, JWT_SCOPE);
    // Every scope of urn:ogdc (ogdc:admin too); tokens carry those the client asked for.
    if (ctx.oidc.client.clientId === OGDC_CLIENT_ID) grant.addResourceScope(OGDC_RESOURCE, OGDC_SCOPE);
    await grant.save();
    return grant;
  },
  ttl: {
    AccessToken: 600,
    IdToken: 600,
    RefreshToken: 86400,
    AuthorizationCode: 60,
    Grant: 86400,
    Session: 86400,
    Interaction: 600,
    ClientCredentials: 600,
  },
};

const provider = new Provider(ISSUER, configuration);

provider.registerGrantType(
  'password',
  async (ctx) => {
    const { username, password, scope } = ctx.oidc.params;
    const resource = ctx.oidc.params.resource || defaultResourceOf(ctx.oidc.client);
    const user = Object.hasOwn(USERS, username) ? USERS[username] : undefined;
    if (!user || user.password !== password) throw new errors.InvalidGrant('invalid credentials');
    const { client } = ctx.oidc;
    const sc = scope || 'openid';
    const grant = new provider.Grant({ clientId: client.clientId, accountId: username });
    grant.addOIDCScope(sc);
    await grant.save();
    const common = { accountId: username, client, grantId: grant.jti, scope: sc, gty: 'password' };
    const at = new provider.AccessToken(common);
    if (resource) {
      if (resource !== JWT_RESOURCE && resource !== OGDC_RESOURCE) throw new errors.InvalidTarget();
      const info = await configuration.features.resourceIndicators.getResourceServerInfo(
        ctx,
        resource,
        client,
      );
      at.resourceServer = new provider.ResourceServer(resource, info);
      at.scope = sc.split(' ').filter((s) => info.scope.split(' ').includes(s)).join(' ');
    }
    const rt = new provider.RefreshToken({ ...common, iat: Math.floor(Date.now() / 1000) });
    const account = await findAccount(ctx, username);
    const idt = new provider.IdToken({ ...(await account.claims()) }, { ctx });
    idt.set('sub', username);
    const body = {
      access_token: await at.save(),
      expires_in: at.expiration,
      token_type: 'Bearer',
      refresh_token: await rt.save(),
      id_token: await idt.issue({ use: 'idtoken' }),
      scope: sc,
    };
    ctx.body = body;
  },
  ['username', 'password', 'scope', 'resource'],
);

// Without this a 500 leaves no trace.
provider.on('server_error', (ctx, error) => console.error('server_error', ctx.path, error));

provider.listen(PORT, HOST, () => {
  console.log(
    `oidc-provider listening, issuer ${ISSUER}, redirect_uris ${REDIRECT_URIS.join(' ')}, ` +
      `${OGDC_CLIENT_ID} redirect_uris ${OGDC_REDIRECT_URIS.join(' ')}`,
  );
});
