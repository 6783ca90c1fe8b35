-- cimhub access bridge: where the CIM Builder's permissions live, and the two
-- functions the hub calls to read them (server/auth/postgres_access.py directly,
-- server/auth/supabase_access.py through PostgREST's /rest/v1/rpc/...).
--
-- Idempotent; applies to a Supabase project and to plain Postgres alike. On a
-- project whose app already has deals, projects and project_members, CREATE
-- TABLE IF NOT EXISTS leaves them alone: they need the columns used below.
--
-- Ids are uuid, as Supabase's auth.users(id) is, so memberships can reference
-- users and each lookup is a primary-key probe. The functions take text (a JWT
-- subject and ids from clients arrive as strings) and read text that is not a
-- uuid as "no such row": a malformed id is a denial, never an error or a grant.
--
-- Why functions and not the seed's embedded select (seed §2):
--   from("deals").select("id, project:projects!inner(members:project_members!inner(user_id))")
--                .eq("id", dealId).eq("project.members.user_id", userId).single()
-- PostgREST applies a filter on an embedded resource to the embedded rows only.
-- Without `!inner` on BOTH embeddings the deal row comes back anyway, with an
-- empty or null embedding, so `!!data` is true for every user: it fails open.
-- One EXISTS in SQL has no such trap, and the hub needs no read access to the
-- tables themselves.

begin;

create table if not exists public.projects (
    id uuid primary key default gen_random_uuid(),
    name text not null,
    created_at timestamptz not null default now()
);

create table if not exists public.project_members (
    project_id uuid not null references public.projects (id) on delete cascade,
    user_id uuid not null,
    created_at timestamptz not null default now(),
    primary key (project_id, user_id)
);
-- The primary key answers the access check; this index serves removing a user
-- everywhere (and the cascade from auth.users below).
create index if not exists project_members_user_id_idx on public.project_members (user_id);

create table if not exists public.deals (
    id uuid primary key default gen_random_uuid(),
    project_id uuid not null references public.projects (id) on delete cascade,
    name text not null,
    created_at timestamptz not null default now()
);
-- Foreign keys are not indexed by Postgres itself; deleting a project scans deals without it.
create index if not exists deals_project_id_idx on public.deals (project_id);

-- On Supabase a deleted user loses their memberships. Plain Postgres has no auth.users.
do $$
begin
    if to_regclass('auth.users') is null then
        return;
    end if;
    if not exists (
        select 1 from pg_catalog.pg_constraint
        where contype = 'f'
          and conrelid = 'public.project_members'::regclass
          and confrelid = 'auth.users'::regclass
    ) then
        alter table public.project_members
            add constraint project_members_user_id_fkey
            foreign key (user_id) references auth.users (id) on delete cascade;
    end if;
end
$$;

-- Tables in `public` are reachable through Supabase's Data API with the anon
-- key. With RLS on and no policy, anon and authenticated read nothing;
-- service_role and the table owner (these functions) are not affected.
alter table public.projects enable row level security;
alter table public.project_members enable row level security;
alter table public.deals enable row level security;

-- The uuid that `p_value` spells, or null. Immutable, so a call on a function
-- argument can still drive an index scan.
create or replace function public.cimhub_uuid_or_null(p_value text)
returns uuid
language sql
immutable
parallel safe
set search_path = ''
as $$
    select case
        when p_value ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' then p_value::uuid
    end
$$;

-- Whether the user is a member of the project that owns the deal.
-- SECURITY DEFINER: runs as the owner, so the caller needs no rights on the
-- tables; search_path is pinned so no caller-created object is picked up.
create or replace function public.cimhub_may_access_deal(p_user_id text, p_deal_id text)
returns boolean
language sql
stable
security definer
set search_path = ''
as $$
    select exists (
        select 1
        from public.deals d
        join public.project_members m on m.project_id = d.project_id
        where d.id = public.cimhub_uuid_or_null(p_deal_id)
          and m.user_id = public.cimhub_uuid_or_null(p_user_id)
    )
$$;

-- Whether the deal belongs to the project, so a CIM cannot claim one project
-- while pointing at a deal of another.
create or replace function public.cimhub_deal_in_project(p_deal_id text, p_project_id text)
returns boolean
language sql
stable
security definer
set search_path = ''
as $$
    select exists (
        select 1
        from public.deals d
        where d.id = public.cimhub_uuid_or_null(p_deal_id)
          and d.project_id = public.cimhub_uuid_or_null(p_project_id)
    )
$$;

-- Only the hub may ask. Functions are executable by PUBLIC by default, and
-- Supabase's default privileges also grant EXECUTE on every new function in
-- `public` to anon and authenticated by name, which revoking from PUBLIC does
-- not undo. The roles exist only on Supabase (or a copy of its setup).
revoke all on function public.cimhub_uuid_or_null(text) from public;
revoke all on function public.cimhub_may_access_deal(text, text) from public;
revoke all on function public.cimhub_deal_in_project(text, text) from public;

do $$
declare
    fn text;
    client_role text;
begin
    foreach fn in array array[
        'public.cimhub_uuid_or_null(text)',
        'public.cimhub_may_access_deal(text, text)',
        'public.cimhub_deal_in_project(text, text)'
    ] loop
        foreach client_role in array array['anon', 'authenticated'] loop
            if exists (select 1 from pg_catalog.pg_roles where rolname = client_role) then
                execute format('revoke all on function %s from %I', fn, client_role);
            end if;
        end loop;
    end loop;
    if exists (select 1 from pg_catalog.pg_roles where rolname = 'service_role') then
        grant execute on function public.cimhub_may_access_deal(text, text) to service_role;
        grant execute on function public.cimhub_deal_in_project(text, text) to service_role;
    end if;
end
$$;

-- PostgREST (Supabase's Data API) learns about new functions on this notice.
notify pgrst, 'reload schema';

commit;
