// A person using the web client in a page, driven by role and label as a screen reader would: signing up
// or logging in, opening a conversation, sending. Every password and text typed is remembered for the
// run-wide privacy scan (test/support/privacy.ts): none may be found in what the server stored.

import type { Page } from "playwright-core";
import { rememberSecret } from "./privacy.js";

export async function signUpInPage(page: Page, username: string, password: string): Promise<void> {
  rememberSecret(`password of ${username}`, password);
  await page.getByRole("button", { name: "I am new here" }).click();
  await page.getByLabel("Username").fill(username);
  await page.getByLabel("Password", { exact: true }).fill(password);
  await page.getByLabel("Repeat password").fill(password);
  await page.getByRole("button", { name: "Sign up" }).click();
  await page.getByText(`Logged in as ${username}`).waitFor({ timeout: 30_000 });
}

export async function logInInPage(page: Page, username: string, password: string): Promise<void> {
  rememberSecret(`password of ${username}`, password);
  await page.getByRole("button", { name: "I have an account" }).click();
  await page.getByLabel("Username").fill(username);
  await page.getByLabel("Password", { exact: true }).fill(password);
  await page.getByRole("button", { name: "Log in" }).click();
  await page.getByText(`Logged in as ${username}`).waitFor({ timeout: 30_000 });
}

/** Opens the 1:1 conversation with `user` from the form that starts one. */
export async function openChatWith(page: Page, user: string): Promise<void> {
  const form = page.getByRole("form", { name: "Start a conversation" });
  await form.getByLabel("Username").fill(user);
  await form.getByRole("button", { name: "Start chat" }).click();
  await page.getByRole("heading", { name: user, level: 2 }).waitFor();
}

export async function sendInPage(page: Page, text: string): Promise<void> {
  rememberSecret("a message typed in the page", text);
  await page.getByLabel("Message", { exact: true }).fill(text);
  await page.getByRole("button", { name: "Send" }).click();
}

/** The messages list of the open conversation. */
export function messages(page: Page) {
  return page.getByRole("list", { name: "Messages" });
}

/** The open conversation's messages the page gave up sending; a test that sent expects none. */
export function notSent(page: Page) {
  return messages(page).getByText(/not sent/);
}
