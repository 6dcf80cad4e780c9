// Credit notes of one invoice take turns, from reading the invoice's credit drafts until their own draft is marked.
// The platform's credit action makes an unmarked draft that kontobro's PUT marks after it: a credit note of the same
// invoice pushed in between took that draft for one made by hand (`unimicro.credit_draft_foreign`) or, when its own
// attempt was uncertain, adopted it and wrote its lines over the other's. A write of the turn that is answered late
// (connectors/http.ts keeps listening) holds the turn until its answer is in. The turns are this process's: hosted
// workers sharing a tenant do not share them.

export interface CreditTurn {
  /** Given to a write as its onLateAnswer: the turn lasts until that answer is in. */
  holdFor(answer: Promise<unknown>): void;
  /** The turn's work is done (the next one starts once its late answers, if any, are in). */
  end(): void;
}

export class CreditTurns {
  private readonly last = new Map<string, Promise<void>>();

  /** Waits for the turn of the invoice with this number. */
  async take(invoiceNumber: string): Promise<CreditTurn> {
    const before = this.last.get(invoiceNumber) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((resolve) => {
      release = resolve;
    });
    const tail = before.then(() => mine);
    this.last.set(invoiceNumber, tail);
    await before;
    const late: Promise<unknown>[] = [];
    return {
      holdFor(answer) {
        late.push(answer);
      },
      end: () => {
        Promise.allSettled(late).then(() => {
          release();
          if (this.last.get(invoiceNumber) === tail) this.last.delete(invoiceNumber);
        });
      },
    };
  }
}
