// The command table: every CLI command, in the order `telepound --help` lists them. Adding a command is
// one file in this folder plus one line here.

import { chat } from "./chat.js";
import type { CommandSpec } from "./command.js";
import { inbox } from "./inbox.js";
import { login } from "./login.js";
import { logout } from "./logout.js";
import { send } from "./send.js";
import { signup } from "./signup.js";
import { user } from "./user.js";
import { whoami } from "./whoami.js";

export const COMMANDS: readonly CommandSpec[] = [signup, login, logout, whoami, user, send, inbox, chat];
