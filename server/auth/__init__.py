"""Identity (Supabase JWTs) and access (deal membership) for the hub."""
