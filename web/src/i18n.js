// Every visible string of the pages, Korean first. The choice is kept in
// localStorage; without one the browser's language decides.
const texts = {
  ko: {
    appConsole: 'cstalk 상담 콘솔',
    appAdmin: 'cstalk 관리자',
    appCustomer: '고객 상담',
    language: 'English',
    loginTitle: '상담사 로그인',
    loginName: '아이디',
    password: '비밀번호',
    login: '로그인',
    loggingIn: '로그인 중…',
    logout: '로그아웃',
    adminView: '관리자 화면',
    consoleView: '상담 콘솔',
    notAdmin: '관리자 계정만 사용할 수 있습니다.',
    waiting: '대기',
    inProgress: '진행 중',
    ended: '종료',
    all: '전체',
    loading: '불러오는 중…',
    noRooms: '상담이 없습니다.',
    noMessageYet: '아직 메시지가 없습니다.',
    pickRoom: '왼쪽 목록에서 상담을 선택하세요.',
    loadOlder: '이전 메시지 더보기',
    noOlder: '처음 메시지입니다.',
    typeMessage: '메시지를 입력하세요',
    typeNote: '내부 메모를 입력하세요 (고객에게 보이지 않음)',
    send: '보내기',
    attachImage: '이미지 첨부',
    uploading: '이미지 올리는 중…',
    internalNote: '내부 메모',
    noteToggle: '내부 메모로 쓰기',
    endRoom: '상담 종료',
    confirmEnd: '이 상담을 종료할까요?',
    confirm: '종료하기',
    cancel: '취소',
    videoCall: '영상 상담',
    callIncoming: '영상 상담 요청이 왔습니다.',
    callOngoing: '진행 중인 영상 상담이 있습니다. 다시 참여할까요?',
    callAccept: '수락',
    callDecline: '거절',
    callWaiting: '상대방의 응답을 기다리고 있습니다…',
    callConnecting: '영상 연결 중…',
    callConnected: '영상 상담 중',
    callPeerLeft: '상대방이 통화에서 나갔습니다.',
    callEnded: '영상 상담이 종료되었습니다.',
    callDeclined: '상대방이 영상 상담을 거절했습니다.',
    callFailed: '영상 연결에 실패했습니다',
    callLost: '연결이 끊어졌습니다.',
    mediaFailed: '카메라 또는 마이크를 사용할 수 없습니다',
    cameraOff: '카메라 끄기',
    cameraOn: '카메라 켜기',
    micOff: '마이크 끄기',
    micOn: '마이크 켜기',
    hangUp: '통화 종료',
    remoteCameraOff: '상대방 카메라가 꺼져 있습니다.',
    deleteMsg: '삭제',
    deleted: '삭제된 메시지입니다.',
    unread: '안 읽음',
    read: '읽음',
    image: '이미지',
    roomEnded: '상담이 종료되었습니다.',
    newConsultation: '새 상담 시작하기',
    closeRoom: '닫기',
    memberNo: '회원번호',
    assignee: '담당자',
    unassigned: '미배정',
    status: '상태',
    customer: '고객',
    lastMessage: '마지막 메시지',
    updated: '최근 활동',
    actions: '작업',
    counselors: '상담사',
    rooms: '상담 목록',
    addCounselor: '상담사 추가',
    name: '이름',
    isAdmin: '관리자',
    yes: '예',
    no: '아니오',
    add: '추가',
    added: '상담사를 추가했습니다.',
    view: '보기',
    conversation: '대화 내용',
    stateConnecting: '연결 중',
    stateConnected: '연결됨',
    stateReconnecting: '재연결 중',
    stateDisconnected: '연결 끊김',
    errorPrefix: '오류',
    sessionExpired: '로그인이 만료되었습니다. 다시 로그인해 주세요.',
    networkError: '서버에 연결할 수 없습니다.',
    customerWelcome: '상담사가 곧 답변드립니다. 궁금한 점을 남겨 주세요.',
    missingParams: '잘못된 접근입니다. 앱에서 다시 열어 주세요.',
    system: '안내',
    counselor: '상담사',
    me: '나',
    reviewAsk: '상담은 만족스러우셨나요?',
    reviewThanks: '소중한 평가 감사합니다.',
    reviewScore: '점',
    review: '평가',
  },
  en: {
    appConsole: 'cstalk Counselor Console',
    appAdmin: 'cstalk Admin',
    appCustomer: 'Customer support',
    language: '한국어',
    loginTitle: 'Counselor sign-in',
    loginName: 'Login name',
    password: 'Password',
    login: 'Sign in',
    loggingIn: 'Signing in…',
    logout: 'Sign out',
    adminView: 'Admin view',
    consoleView: 'Console',
    notAdmin: 'Only administrator accounts can use this page.',
    waiting: 'Waiting',
    inProgress: 'In progress',
    ended: 'Ended',
    all: 'All',
    loading: 'Loading…',
    noRooms: 'No consultations.',
    noMessageYet: 'No messages yet.',
    pickRoom: 'Pick a consultation from the list.',
    loadOlder: 'Load earlier messages',
    noOlder: 'This is the first message.',
    typeMessage: 'Type a message',
    typeNote: 'Type an internal note (hidden from the customer)',
    send: 'Send',
    attachImage: 'Attach image',
    uploading: 'Uploading image…',
    internalNote: 'Internal note',
    noteToggle: 'Write as internal note',
    endRoom: 'End consultation',
    confirmEnd: 'End this consultation?',
    confirm: 'End it',
    cancel: 'Cancel',
    videoCall: 'Video call',
    callIncoming: 'Incoming video call.',
    callOngoing: 'A video call is in progress. Rejoin it?',
    callAccept: 'Accept',
    callDecline: 'Decline',
    callWaiting: 'Waiting for the other side to answer…',
    callConnecting: 'Connecting video…',
    callConnected: 'In a video call',
    callPeerLeft: 'The other side left the call.',
    callEnded: 'The video call has ended.',
    callDeclined: 'The other side declined the video call.',
    callFailed: 'The video call failed',
    callLost: 'The connection was lost.',
    mediaFailed: 'The camera or microphone is not available',
    cameraOff: 'Camera off',
    cameraOn: 'Camera on',
    micOff: 'Mute',
    micOn: 'Unmute',
    hangUp: 'Hang up',
    remoteCameraOff: "The other side's camera is off.",
    deleteMsg: 'Delete',
    deleted: 'This message was deleted.',
    unread: 'Unread',
    read: 'Read',
    image: 'Image',
    roomEnded: 'This consultation has ended.',
    newConsultation: 'Start a new consultation',
    closeRoom: 'Close',
    memberNo: 'Member no.',
    assignee: 'Assignee',
    unassigned: 'Unassigned',
    status: 'Status',
    customer: 'Customer',
    lastMessage: 'Last message',
    updated: 'Last activity',
    actions: 'Actions',
    counselors: 'Counselors',
    rooms: 'Consultations',
    addCounselor: 'Add counselor',
    name: 'Name',
    isAdmin: 'Admin',
    yes: 'Yes',
    no: 'No',
    add: 'Add',
    added: 'Counselor added.',
    view: 'View',
    conversation: 'Conversation',
    stateConnecting: 'Connecting',
    stateConnected: 'Connected',
    stateReconnecting: 'Reconnecting',
    stateDisconnected: 'Disconnected',
    errorPrefix: 'Error',
    sessionExpired: 'Your session has expired. Please sign in again.',
    networkError: 'Cannot reach the server.',
    customerWelcome: 'A counselor will answer shortly. Leave your question here.',
    missingParams: 'Invalid link. Please open it again from the app.',
    system: 'Notice',
    counselor: 'Counselor',
    me: 'Me',
    reviewAsk: 'How was your consultation?',
    reviewThanks: 'Thank you for your feedback.',
    reviewScore: 'of 5',
    review: 'Rating',
  },
};

const storageKey = 'cstalk.lang';

function initialLang() {
  try {
    const saved = localStorage.getItem(storageKey);
    if (saved === 'ko' || saved === 'en') return saved;
  } catch { /* storage may be disabled in a web view */ }
  const nav = (navigator.language || 'ko').toLowerCase();
  return nav.startsWith('en') ? 'en' : 'ko';
}

let current = initialLang();
const listeners = new Set();

export function lang() { return current; }

export function t(key) {
  return texts[current][key] ?? texts.ko[key] ?? key;
}

export function setLang(l) {
  current = l === 'en' ? 'en' : 'ko';
  try { localStorage.setItem(storageKey, current); } catch { /* ignore */ }
  document.documentElement.lang = current;
  applyTexts(document);
  for (const fn of listeners) fn(current);
}

export function onLangChange(fn) { listeners.add(fn); }

// applyTexts fills elements marked data-i18n (text) and data-i18n-ph
// (placeholder) with the current language.
export function applyTexts(root) {
  for (const el of root.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll('[data-i18n-ph]')) el.placeholder = t(el.dataset.i18nPh);
  for (const el of root.querySelectorAll('[data-i18n-title]')) el.title = t(el.dataset.i18nTitle);
}

// bindToggle makes button switch between Korean and English.
export function bindToggle(button) {
  button.addEventListener('click', () => setLang(current === 'ko' ? 'en' : 'ko'));
}

export function initLang() {
  document.documentElement.lang = current;
  applyTexts(document);
}
