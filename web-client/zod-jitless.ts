// Imported first by main.tsx, before any schema is built: zod compiles fast parsers with `new Function`
// unless told not to, and its probe for whether it may is itself refused (and reported) by the page's
// script-src 'self'. The page runs the interpreted parsers, which check exactly the same.

import { config } from "zod";

config({ jitless: true });
