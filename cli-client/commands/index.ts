// The command table: every CLI command, in the order `telepound --help` lists them. Adding a command is
// one file in this folder plus one line here.

import { chat } from "./chat.js";
import type { CommandSpec } from "./command.js";
import { daemon } from "./daemon.js";
import { devices } from "./devices.js";
import { devicesRevoke } from "./devices-revoke.js";
import { groupAdd } from "./group-add.js";
import { groupCreate } from "./group-create.js";
import { groupDecline } from "./group-decline.js";
import { groupInfo } from "./group-info.js";
import { groupJoin } from "./group-join.js";
import { groupLeave } from "./group-leave.js";
import { groupList } from "./group-list.js";
import { groupRemove } from "./group-remove.js";
import { history } from "./history.js";
import { inbox } from "./inbox.js";
import { listen } from "./listen.js";
import { login } from "./login.js";
import { logout } from "./logout.js";
import { send } from "./send.js";
import { signup } from "./signup.js";
import { trust } from "./trust.js";
import { user } from "./user.js";
import { verify } from "./verify.js";
import { whoami } from "./whoami.js";

export const COMMANDS: readonly CommandSpec[] = [
  signup,
  login,
  logout,
  whoami,
  // "devices" before "devices revoke": the noun lists, the verb is registered under it.
  devices,
  devicesRevoke,
  user,
  verify,
  trust,
  send,
  inbox,
  listen,
  chat,
  daemon,
  history,
  groupCreate,
  groupAdd,
  groupRemove,
  groupJoin,
  groupDecline,
  groupLeave,
  groupInfo,
  groupList,
];
