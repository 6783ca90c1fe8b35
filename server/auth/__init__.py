"""Identity (Supabase JWTs) and access (deal membership) for the hub.

* :mod:`.tokens`: TokenVerifier, Identity, DevTokenIssuer, new_service_key.
* :mod:`.jwks`: the cached JWKS of a Supabase project.
* :mod:`.access`: the AccessBackend interface, CachedAccess, DevAccess, access_from_settings.
* :mod:`.postgres_access`, :mod:`.supabase_access`: the two real backends.

docs/auth.md describes settings, accepted credentials, errors and the migration.
"""
