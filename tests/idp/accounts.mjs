// Test accounts of the loopback OpenID Provider. Every password is "secret".
// Keep README.md in step with this file.

export const PASSWORD = 'secret';

// Entra-like tenants (directory ids).
export const TENANT_CONTOSO = '72f988bf-86f1-41af-91ab-2d7cd011db47';
export const TENANT_FABRIKAM = '3b1a9c4e-5d6f-4a7b-8c9d-0e1f2a3b4c5d';

// Entra-like group object ids.
export const GROUP_STAFF = '0c7b7a1e-aaaa-4f00-9000-000000000001';
export const GROUP_ENROLL = '0c7b7a1e-aaaa-4f00-9000-000000000002';
export const GROUP_ADMINS = '0c7b7a1e-aaaa-4f00-9000-000000000003';

function entra({
  login, sub, tid, oid, upn, name, groups, directoryGroups, extra = {},
}) {
  const claims = {
    sub,
    tid,
    oid,
    name,
    preferred_username: upn === undefined ? login : upn,
    ...extra,
  };
  if (upn !== undefined) claims.upn = upn;
  if (groups !== undefined) claims.groups = groups;
  const a = { login, password: PASSWORD, kind: 'entra', claims };
  if (directoryGroups !== undefined) a.directoryGroups = directoryGroups;
  return a;
}

function google({ login, sub, hd, email, emailVerified = true, name }) {
  const claims = {
    sub, email, email_verified: emailVerified, name,
  };
  if (hd !== undefined) claims.hd = hd;
  return { login, password: PASSWORD, kind: 'google', claims };
}

export function defaultAccounts() {
  return [
    // --- Entra-like -------------------------------------------------------
    entra({
      login: 'alice@contoso.com',
      sub: 'AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ',
      tid: TENANT_CONTOSO,
      oid: '00000000-0000-0000-66f3-3332eca7ea81',
      upn: 'alice@contoso.com',
      name: 'Alice Contoso',
      groups: [GROUP_STAFF, GROUP_ENROLL],
      extra: { email: 'alice@contoso.com' },
    }),
    // Groups overage: no "groups", a pointer to Microsoft Graph instead.
    entra({
      login: 'bob@contoso.com',
      sub: 'BBBBBBBBBBBBBBBBBBBBBIkzqFVrSaSaFHy782bbtaQ',
      tid: TENANT_CONTOSO,
      oid: '00000000-0000-0000-77f3-3332eca7ea82',
      upn: 'bob@contoso.com',
      name: 'Bob Overage',
      // what the IdP's Graph endpoint answers for him
      directoryGroups: [GROUP_STAFF, GROUP_ENROLL],
      extra: {
        hasgroups: true,
        _claim_names: { groups: 'src1' },
        _claim_sources: {
          src1: {
            endpoint: `https://graph.microsoft.com/v1.0/users/00000000-0000-0000-77f3-3332eca7ea82/getMemberObjects`,
          },
        },
      },
    }),
    // Contoso member without the enroll group.
    entra({
      login: 'erin@contoso.com',
      sub: 'EEEEEEEEEEEEEEEEEEEEEIkzqFVrSaSaFHy782bbtaQ',
      tid: TENANT_CONTOSO,
      oid: '00000000-0000-0000-88f3-3332eca7ea85',
      upn: 'erin@contoso.com',
      name: 'Erin NoEnroll',
      groups: [GROUP_STAFF],
    }),
    // Guest in Contoso: no upn, preferred_username is the home address.
    entra({
      login: 'guest@partner.example',
      sub: 'GGGGGGGGGGGGGGGGGGGGGIkzqFVrSaSaFHy782bbtaQ',
      tid: TENANT_CONTOSO,
      oid: '00000000-0000-0000-99f3-3332eca7ea87',
      upn: undefined,
      name: 'Guest Partner',
      groups: [GROUP_STAFF],
      extra: { email: 'guest@partner.example' },
    }),
    // Another tenant.
    entra({
      login: 'carol@fabrikam.com',
      sub: 'CCCCCCCCCCCCCCCCCCCCCIkzqFVrSaSaFHy782bbtaQ',
      tid: TENANT_FABRIKAM,
      oid: '00000000-0000-0000-aaf3-3332eca7ea83',
      upn: 'carol@fabrikam.com',
      name: 'Carol Fabrikam',
      groups: [GROUP_ADMINS],
    }),

    // --- Google-like ------------------------------------------------------
    google({
      login: 'gina@example.org', sub: '110000000000000000001', hd: 'example.org', email: 'gina@example.org', name: 'Gina Workspace',
    }),
    google({
      login: 'gus@example.org', sub: '110000000000000000002', hd: 'example.org', email: 'gus@example.org', emailVerified: false, name: 'Gus Unverified',
    }),
    google({
      login: 'olga@other.example', sub: '110000000000000000003', hd: 'other.example', email: 'olga@other.example', name: 'Olga OtherDomain',
    }),
    google({
      login: 'pat@gmail.com', sub: '110000000000000000004', hd: undefined, email: 'pat@gmail.com', name: 'Pat Consumer',
    }),

    // --- generic ------------------------------------------------------------
    {
      login: 'user1',
      password: PASSWORD,
      kind: 'generic',
      claims: {
        sub: 'user1',
        email: 'user1@generic.test',
        email_verified: true,
        name: 'User One',
        preferred_username: 'user1',
      },
    },
  ];
}
