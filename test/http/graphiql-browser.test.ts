import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { type Browser, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHROMIUM_PATH } from '../../tools/test-setup/requirements.js';
import { eventually, useTestEnvironment } from '../support/server.js';

/**
 * GraphiQL driven for real: Debian's Chromium (headless, through playwright-core, which downloads
 * no browser) opens the server's /graphql, runs the pre-filled query, and the result pane must show
 * the 20 numbers. It saves the screenshot the README shows (docs/graphiql.png).
 *
 * `npm test` installs Chromium first (tools/test-setup, as root), so it runs wherever `npm test`
 * ran. Run on its own without Chromium (`npx vitest run` of this file), it is reported as skipped
 * with the command that installs it; with CI set, a missing Chromium is a failure.
 */
const hasChromium = existsSync(CHROMIUM_PATH);
const SCREENSHOT = fileURLToPath(new URL('../../docs/graphiql.png', import.meta.url));
/** The subscription's screenshot: not the README's, so under /tmp. */
const SUBSCRIPTION_SCREENSHOT = '/tmp/graphiql-subscription.png';
const INSTALL_HINT = `Chromium not found at ${CHROMIUM_PATH}: install it with \`apt-get install -y chromium\` (npm test does, as root) or set CHROMIUM_PATH`;

if (!hasChromium) {
  if (process.env.CI) throw new Error(`${INSTALL_HINT}; CI must run the browser test`);
  console.warn(`GraphiQL browser test skipped: ${INSTALL_HINT}`);
}

/** The item numbers a result pane's text shows (the editor renders spaces as no-break spaces). */
const numbersShown = (text: string) => [...text.matchAll(/"number":\s*(\d+)/g)].map((match) => Number(match[1]));

const t = useTestEnvironment();
let browser: Browser | undefined;

beforeAll(async () => {
  if (!hasChromium) return;
  browser = await chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    // As root, and on a machine whose network is closed: no sandbox, no background traffic.
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
});

afterAll(async () => {
  await browser?.close();
});

describe('GraphiQL in a real browser', () => {
  it.runIf(hasChromium)(
    hasChromium ? 'runs the pre-filled { items { number } } and shows the 20 numbers' : `skipped: ${INSTALL_HINT}`,
    { timeout: 90_000 },
    async () => {
      // Tall enough for the result pane (an editor that renders only its visible lines) to show all 20.
      const page = await browser!.newPage({ viewport: { width: 1280, height: 1440 } });
      const offline: string[] = [];
      page.on('requestfailed', (request) => offline.push(request.url()));
      await page.goto(t.server.url, { waitUntil: 'load' });

      // The editor opens with the query ready to run.
      const editor = page.locator('.graphiql-query-editor');
      await editor.waitFor({ timeout: 30_000 });
      await expect.poll(async () => (await editor.innerText()).replace(/\s+/g, ' '), { timeout: 30_000 }).toContain(
        '{ items { number } }',
      );

      const answered = page.waitForResponse(
        (reply) => reply.request().method() === 'POST' && (reply.request().postData() ?? '').includes('items'),
      );
      await page.locator('.graphiql-execute-button').click();
      // What the server sent ...
      expect(await (await answered).json()).toEqual({
        data: { items: Array.from({ length: 20 }, (_, i) => ({ number: i + 1 })) },
      });
      // ... is what the result pane shows.
      const response = page.locator('.graphiql-response');
      await expect
        .poll(async () => numbersShown(await response.innerText()).length, { timeout: 30_000 })
        .toBe(20);
      const numbers = numbersShown(await response.innerText());
      expect(numbers).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));

      // The docs explorer shows the schema's descriptions.
      await page.locator('[aria-label="Show Documentation Explorer"]').click();
      const docs = page.locator('.graphiql-doc-explorer');
      await docs.getByText('Query', { exact: true }).first().click();
      await expect.poll(async () => docs.innerText(), { timeout: 10_000 }).toContain('Everything you can read');
      expect(await docs.innerText()).toContain('Items ordered by id');
      await page.locator('[aria-label="Hide Documentation Explorer"]').click();

      await mkdir(fileURLToPath(new URL('../../docs/', import.meta.url)), { recursive: true });
      await page.screenshot({ path: SCREENSHOT });
      // Nothing was fetched from elsewhere: GraphiQL is served from npm, not a CDN.
      expect(offline).toEqual([]);
    },
  );

  it.runIf(hasChromium)(
    hasChromium ? 'runs subscription { itemCreated { id number } } and shows the item a mutation then creates' : `skipped: ${INSTALL_HINT}`,
    { timeout: 90_000 },
    async () => {
      const page = await browser!.newPage({ viewport: { width: 1280, height: 900 } });
      const offline: string[] = [];
      page.on('requestfailed', (request) => offline.push(request.url()));
      // GraphiQL's requests to the endpoint, for the failure messages.
      const sent: string[] = [];
      page.on('request', (request) => {
        if (request.url().startsWith(t.server.url) && request.resourceType() !== 'document') {
          const accept = request.headers()['accept'] ?? '';
          sent.push(`${request.method()} ${request.url().slice(t.server.url.length)} accept=${accept} ${request.postData()?.slice(0, 120) ?? ''}`);
        }
      });
      try {
        await page.goto(t.server.url, { waitUntil: 'load' });
        const editor = page.locator('.graphiql-query-editor');
        await editor.waitFor({ timeout: 30_000 });
        await expect.poll(async () => (await editor.innerText()).replace(/\s+/g, ' '), { timeout: 30_000 }).toContain('{ items { number } }');

        // Replace the pre-filled query with the subscription, as a user would (select all, type).
        await editor.click();
        await page.keyboard.press('Control+A');
        await page.keyboard.insertText('subscription { itemCreated { id number } }');
        await expect.poll(async () => (await editor.innerText()).replace(/\s+/g, ' '), { timeout: 10_000 }).toContain(
          'subscription { itemCreated { id number } }',
        );
        const live = t.server.server.live;
        const before = live?.size ?? 0;
        await page.locator('.graphiql-execute-button').click();
        // GraphiQL subscribed (over GraphQL over SSE): poolgraph serves one more subscription.
        // (GraphiQL's fetcher subscribes by GET unless its `method` is POST; a GET without a CSRF
        // header is refused by poolgraph's CSRF prevention, which the message then shows.)
        // The listener up too (the first subscription opens it): items created from then on are delivered.
        const subscribed = await eventually(() => (live?.size ?? 0) === before + 1 && live?.listenerPid !== undefined, 15_000);
        const shown = await page.locator('.graphiql-response').innerText();
        expect(subscribed, `poolgraph serves ${live?.size} subscriptions; GraphiQL sent ${JSON.stringify(sent)} and shows ${shown}`).toBe(true);

        // The test creates an item; GraphiQL's result pane shows it.
        const { body } = await t.server.graphql('mutation { createItem(input: { number: 777, label: "seen in GraphiQL" }) { id } }');
        expect(body.errors).toBeUndefined();
        const id = (body.data?.['createItem'] as { id: string }).id;
        const response = page.locator('.graphiql-response');
        await expect
          .poll(async () => (await response.innerText()).replace(/\s+/g, ' '), { timeout: 30_000 })
          .toMatch(new RegExp(`"itemCreated": \\{ "id": "${id}", "number": 777 \\}`));
        await page.screenshot({ path: SUBSCRIPTION_SCREENSHOT });
        expect(offline).toEqual([]);
      } finally {
        await page.close();
      }
      // The page gone, so is its subscription.
      expect(await eventually(() => (t.server.server.live?.size ?? 0) === 0, 10_000)).toBe(true);
    },
  );
});
